-- Staging must hand on emails lower-cased and without surrounding spaces.
select
    customer_id,
    email

from {{ ref('stg_shop__customers') }}
where email != lower(trim(email)) or email = ''
