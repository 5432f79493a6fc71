-- One row per product, with its current list price and unit cost. The cost of a product can be
-- unknown (empty in the export): it stays null, because the default 0 would make every sale of
-- the product look like pure margin.
with

source as (

    select * from {{ source('shop', 'products') }}

),

renamed as (

    select
        product_id,
        trim(product_name) as product_name,
        category,
        price,
        cost,
        updated_at

    from source

)

select * from renamed
