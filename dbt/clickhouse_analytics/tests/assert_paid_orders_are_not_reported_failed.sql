-- An order with a succeeded attempt must not end as 'failed' in fct_orders, whatever order
-- its attempts came in (the failed-then-retried payment must end as succeeded).
with

succeeded as (

    select distinct order_id
    from {{ ref('stg_source__payment_transactions') }}
    where payment_status = 'succeeded'

),

orders as (

    select * from {{ ref('fct_orders') }}

)

select
    orders.order_id as order_id,
    orders.payment_status as payment_status

from orders
inner join succeeded on orders.order_id = succeeded.order_id
where orders.payment_status != 'succeeded'
