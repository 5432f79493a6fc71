-- One row per customer, with what they bought (lifetime value = net revenue of their orders,
-- see int_orders_with_revenue) and how they use the shop.
-- A small dimension: ordered by its key for point lookups and joins, not partitioned (a
-- partition per anything would only multiply tiny parts).
-- join_use_nulls = 1: a customer without orders gets null first/last order times from the left
-- join, not 1970-01-01.
{{
    config(
        materialized='table',
        engine='MergeTree()',
        order_by='customer_id',
        query_settings={'join_use_nulls': 1}
    )
}}

with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

customer_orders as (

    select * from {{ ref('int_customer_orders') }}

),

customer_activity as (

    select * from {{ ref('int_customer_activity') }}

),

final as (

    select
        customers.customer_id as customer_id,
        customers.first_name as first_name,
        customers.last_name as last_name,
        customers.email as email,
        customers.country as country,
        customers.city as city,
        customers.signup_date as signup_date,
        toUInt64(coalesce(customer_orders.order_count, 0)) as order_count,
        toUInt64(coalesce(customer_orders.returned_order_count, 0)) as returned_order_count,
        toDecimal64(coalesce(customer_orders.lifetime_value, 0), 2) as lifetime_value,
        customer_orders.first_order_at as first_order_at,
        customer_orders.last_order_at as last_order_at,
        toUInt64(coalesce(customer_activity.activity_count, 0)) as activity_count,
        customer_activity.last_activity_at as last_activity_at,
        customers.updated_at as updated_at

    from customers
    left join customer_orders on customers.customer_id = customer_orders.customer_id
    left join customer_activity on customers.customer_id = customer_activity.customer_id

)

select * from final
