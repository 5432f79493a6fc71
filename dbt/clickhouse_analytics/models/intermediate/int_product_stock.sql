-- One row per product that is counted in at least one warehouse: units on hand summed over
-- the warehouses, and when the newest count was made.
with

inventory as (

    select * from {{ ref('stg_source__inventory') }}

),

per_product as (

    select
        product_id,
        sum(quantity_on_hand) as stock_on_hand,
        count() as warehouse_count,
        max(updated_at) as inventory_updated_at

    from inventory
    group by product_id

)

select * from per_product
