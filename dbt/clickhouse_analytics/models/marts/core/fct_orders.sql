-- One row per order: its lines, money and final payment status.
-- MergeTree ordered by (order_date, order_id): dashboards filter by date range first, and
-- daily_sales_summary aggregates by day. Monthly partitions let ClickHouse skip whole months
-- for a date filter and keep the number of parts small (a few dozen months, not days).
-- join_use_nulls = 1: an order without payment attempts gets nulls (standard SQL) from the
-- left join, not ClickHouse's default values, so "no payment" is told apart from an attempt.
{{
    config(
        materialized='table',
        engine='MergeTree()',
        order_by='(order_date, order_id)',
        partition_by='toYYYYMM(order_date)',
        query_settings={'join_use_nulls': 1}
    )
}}

with

orders as (

    select * from {{ ref('int_orders_with_revenue') }}

),

payments as (

    select * from {{ ref('int_payments_latest_per_order') }}

),

final as (

    select
        orders.order_id as order_id,
        orders.customer_id as customer_id,
        orders.order_ts as order_ts,
        orders.order_date as order_date,
        orders.status as status,
        orders.line_count as line_count,
        orders.item_count as item_count,
        orders.gross_amount as gross_amount,
        orders.discount_amount as discount_amount,
        orders.revenue as revenue,
        orders.cost as cost,
        orders.margin as margin,
        orders.unknown_cost_revenue as unknown_cost_revenue,
        orders.net_revenue as net_revenue,
        orders.net_margin as net_margin,
        toLowCardinality(coalesce(payments.payment_status, 'no_payment')) as payment_status,
        payments.payment_method as payment_method,
        toDecimal64(coalesce(payments.amount_paid, 0), 2) as amount_paid,
        toUInt64(coalesce(payments.attempt_count, 0)) as payment_attempt_count,
        orders.updated_at as updated_at

    from orders
    left join payments on orders.order_id = payments.order_id

)

select * from final
