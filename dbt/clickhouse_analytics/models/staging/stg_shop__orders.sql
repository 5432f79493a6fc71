-- One row per order; order_date is the day the order was placed, the grain of the daily marts.
with

source as (

    select * from {{ source('shop', 'orders') }}

),

renamed as (

    select
        order_id,
        customer_id,
        order_ts,
        toDate(order_ts) as order_date,
        lower(status) as status,
        updated_at

    from source

)

select * from renamed
