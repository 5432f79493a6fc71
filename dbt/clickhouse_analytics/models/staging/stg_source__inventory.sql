-- One row per (product, warehouse): FINAL makes the ReplacingMergeTree return only the latest
-- version of each count, even before ClickHouse has merged the parts in the background.
with

source as (

    select * from {{ source('source', 'inventory') }} final

),

renamed as (

    select
        -- PostgreSQL's integer key, cast to the shop's product key type.
        toUInt32(product_id) as product_id,
        warehouse,
        quantity_on_hand,
        updated_at

    from source

)

select * from renamed
