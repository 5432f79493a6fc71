-- Each order's revenue must be the sum of its lines' revenue, gross - discount = revenue, and
-- margin = revenue - unknown_cost_revenue - cost.
with

lines as (

    select
        order_id,
        sum(line_revenue) as line_revenue

    from {{ ref('int_order_items_enriched') }}
    group by order_id

),

orders as (

    select * from {{ ref('fct_orders') }}

)

select
    orders.order_id as order_id,
    orders.revenue as revenue,
    orders.gross_amount - orders.discount_amount as gross_minus_discount,
    orders.margin as margin,
    orders.revenue - orders.unknown_cost_revenue - orders.cost as known_cost_margin,
    lines.line_revenue as line_revenue

from orders
inner join lines on orders.order_id = lines.order_id
where
    orders.revenue != lines.line_revenue
    or orders.revenue != orders.gross_amount - orders.discount_amount
    or orders.margin != orders.revenue - orders.unknown_cost_revenue - orders.cost
