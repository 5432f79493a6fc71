-- One row per product, with its margin per unit and the stock on hand summed over every
-- warehouse (from the PostgreSQL inventory). A product counted nowhere has 0 units on hand.
-- A small dimension: ordered by its key, not partitioned.
-- join_use_nulls = 1: a product without inventory rows gets a null inventory_updated_at.
{{
    config(
        materialized='table',
        engine='MergeTree()',
        order_by='product_id',
        query_settings={'join_use_nulls': 1}
    )
}}

with

products as (

    select * from {{ ref('stg_shop__products') }}

),

stock as (

    select * from {{ ref('int_product_stock') }}

),

final as (

    select
        products.product_id as product_id,
        products.product_name as product_name,
        products.category as category,
        products.price as price,
        products.cost as cost,
        toDecimal64(products.price, 2) - toDecimal64(products.cost, 2) as unit_margin,
        toInt64(coalesce(stock.stock_on_hand, 0)) as stock_on_hand,
        toUInt64(coalesce(stock.warehouse_count, 0)) as warehouse_count,
        stock.inventory_updated_at as inventory_updated_at,
        products.updated_at as updated_at

    from products
    left join stock on products.product_id = stock.product_id

)

select * from final
