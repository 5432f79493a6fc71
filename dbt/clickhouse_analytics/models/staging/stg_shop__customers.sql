-- One row per customer. Emails are typed by hand: lower-cased and trimmed so the same address
-- always compares equal; an empty city means "unknown" and becomes null, not ''.
with

source as (

    select * from {{ source('shop', 'customers') }}

),

renamed as (

    select
        customer_id,
        trim(first_name) as first_name,
        trim(last_name) as last_name,
        lower(trim(email)) as email,
        country,
        nullif(trim(city), '') as city,
        signup_date,
        updated_at

    from source

)

select * from renamed
