-- One row per order line with the product's category and unit cost, and the line's money:
--   gross_amount    = quantity * unit_price
--   discount_amount = gross_amount * discount_pct / 100, rounded to the cent (half away from zero)
--   line_revenue    = gross_amount - discount_amount
--   line_cost       = quantity * the product's unit cost
--   line_margin     = line_revenue - line_cost
-- When the product's cost is unknown (null), line_cost and line_margin are null too: unknown,
-- not zero.
-- Amounts are widened to Decimal(18, 2) before multiplying: Decimal(10, 2) * quantity could
-- overflow ClickHouse's 9-digit Decimal32.
with

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

products as (

    select * from {{ ref('stg_shop__products') }}

),

priced as (

    select
        order_items.order_item_id as order_item_id,
        order_items.order_id as order_id,
        order_items.product_id as product_id,
        products.category as category,
        order_items.quantity as quantity,
        order_items.unit_price as unit_price,
        products.cost as unit_cost,
        order_items.discount_pct as discount_pct,
        toDecimal64(order_items.unit_price, 2) * order_items.quantity as gross_amount,
        toDecimal64(products.cost, 2) * order_items.quantity as line_cost

    from order_items
    inner join products on order_items.product_id = products.product_id

),

discounted as (

    select
        *,
        toDecimal64(round(gross_amount * discount_pct / 100, 2), 2) as discount_amount

    from priced

),

final as (

    select
        order_item_id,
        order_id,
        product_id,
        category,
        quantity,
        unit_price,
        unit_cost,
        discount_pct,
        gross_amount,
        discount_amount,
        gross_amount - discount_amount as line_revenue,
        line_cost,
        gross_amount - discount_amount - line_cost as line_margin

    from discounted

)

select * from final
