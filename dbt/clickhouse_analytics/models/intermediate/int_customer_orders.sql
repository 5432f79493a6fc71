-- One row per customer who placed at least one order that was not cancelled: how many orders,
-- how much they are worth (lifetime value = net revenue, so returns do not count), and when
-- the first and last were placed.
with

orders as (

    select * from {{ ref('int_orders_with_revenue') }}

),

per_customer as (

    select
        customer_id,
        count() as order_count,
        countIf(status = 'returned') as returned_order_count,
        sum(net_revenue) as lifetime_value,
        min(order_ts) as first_order_at,
        max(order_ts) as last_order_at

    from orders
    where status != 'cancelled'
    group by customer_id

)

select * from per_customer
