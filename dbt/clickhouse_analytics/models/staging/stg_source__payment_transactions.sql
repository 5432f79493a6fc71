-- One row per payment attempt, in its latest version: FINAL collapses the versions the
-- ReplacingMergeTree holds until it merges (a payment refunded later arrives as a new version).
with

source as (

    select * from {{ source('source', 'payment_transactions') }} final

),

renamed as (

    select
        toUInt64(payment_id) as payment_id,
        -- PostgreSQL's bigint key, cast to the shop's order key type.
        toUInt64(order_id) as order_id,
        amount,
        method as payment_method,
        status as payment_status,
        created_at,
        updated_at

    from source

)

select * from renamed
