-- Exercise 03: clean the customers in staging.
--
-- stg_shop__customers is the one place where raw.customers is cleaned; every later model
-- trusts it. This version passes the raw columns through unchanged. Make it clean them:
--   * email: lower-cased, without surrounding spaces (customers type it by hand:
--     "  Sophie.Wagner@Example.com" and "sophie.wagner@example.com" are one address)
--   * city: without surrounding spaces, and null (not '') when the shop does not know it
--   * first_name, last_name: without surrounding spaces
-- Keep every column and its name; change only the lines marked TODO.
--
-- Check it with `course check 03` (or lesson.check("03") in notebook 03). The check copies
-- this file to models/staging/stg_shop__customers.sql in a scratch copy of the dbt project
-- and runs `dbt build --select stg_shop__customers` on a copy of raw.customers with two
-- customers added (901 and 902) that carry the wrinkles the sample data lacks: an empty city,
-- a city and names with stray spaces. Then it compares your view's rows with the cleaned
-- rows it expects and requires the model's dbt tests to pass.
with

source as (

    select * from {{ source('shop', 'customers') }}

),

renamed as (

    select
        customer_id,
        first_name,  -- TODO: without surrounding spaces
        last_name,  -- TODO: without surrounding spaces
        email,  -- TODO: lower-cased and without surrounding spaces
        country,
        city,  -- TODO: without surrounding spaces; null when empty
        signup_date,
        updated_at

    from source

)

select * from renamed
