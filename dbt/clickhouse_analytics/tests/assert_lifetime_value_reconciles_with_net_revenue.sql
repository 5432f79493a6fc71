-- Lifetime value is net revenue seen per customer: summed over all customers it must equal
-- the net revenue of fct_orders and of daily_sales_summary. Returns a row when it does not.
with

customers as (

    select sum(lifetime_value) as total from {{ ref('dim_customers') }}

),

orders as (

    select sum(net_revenue) as total from {{ ref('fct_orders') }}

),

days as (

    select sum(net_revenue) as total from {{ ref('daily_sales_summary') }}

)

select
    customers.total as lifetime_value_total,
    orders.total as fct_orders_total,
    days.total as daily_sales_total

from customers
cross join orders
cross join days
where customers.total != orders.total or orders.total != days.total
