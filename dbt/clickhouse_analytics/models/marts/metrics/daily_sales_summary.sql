-- One row per day with at least one order placed: orders, items sold and money of that day.
-- Semantics: cancelled orders are left out of every measure (nothing was sold); they are only
-- counted in cancelled_orders, so a day whose orders were all cancelled has a row of zeros.
-- Returned orders were sold and count in orders, items and gross_revenue, but gave the money
-- back, so net_revenue and net_margin (the numbers to report) leave them out;
-- returned_orders and returned_revenue show how much was returned.
--
-- Incremental, delete+insert on order_date: ClickHouse cannot update rows in place, and an
-- old day changes when one of its orders is later returned. Each run recomputes only the days
-- with an order changed since the last run (orders.updated_at beyond the stored watermark),
-- deletes those days (a lightweight DELETE on the table's ordering key) and inserts them
-- again. `append` would double-count a recomputed day, and the default (legacy) strategy
-- rebuilds the whole table on every run. Reloading different raw data (another data set)
-- needs `--full-refresh`: days that vanished are only dropped by a full rebuild.
-- Not partitioned: one row per day is a few hundred rows, and monthly partitions would only
-- multiply tiny parts.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_date',
        engine='MergeTree()',
        order_by='order_date',
        on_schema_change='fail'
    )
}}

with

{% if is_incremental() %}
changed_days as (

    -- The days with an order changed since the last run (cancelled ones too: a cancellation
    -- changes its day). The watermark is the newest updated_at already summarised.
    select distinct fct_orders.order_date
    from {{ ref('fct_orders') }} as fct_orders
    where fct_orders.updated_at > (
        select max(summary.last_order_updated_at) from {{ this }} as summary
    )

),
{% endif %}

fct_orders as (

    select * from {{ ref('fct_orders') }}
    {% if is_incremental() %}
    where order_date in (select changed_days.order_date from changed_days)
    {% endif %}

),

per_day as (

    select
        order_date,
        countIf(status != 'cancelled') as orders,
        countIf(status = 'cancelled') as cancelled_orders,
        countIf(status = 'returned') as returned_orders,
        sumIf(item_count, status != 'cancelled') as items,
        sumIf(revenue, status != 'cancelled') as gross_revenue,
        sumIf(revenue, status = 'returned') as returned_revenue,
        -- net_revenue and net_margin are already 0 for cancelled and returned orders.
        sum(net_revenue) as net_revenue,
        sum(net_margin) as net_margin,
        max(updated_at) as last_order_updated_at

    from fct_orders
    group by order_date

),

final as (

    select
        order_date,
        toUInt64(orders) as orders,
        toUInt64(cancelled_orders) as cancelled_orders,
        toUInt64(returned_orders) as returned_orders,
        toUInt64(items) as items,
        toDecimal64(gross_revenue, 2) as gross_revenue,
        toDecimal64(returned_revenue, 2) as returned_revenue,
        toDecimal64(net_revenue, 2) as net_revenue,
        toDecimal64(net_margin, 2) as net_margin,
        last_order_updated_at

    from per_day

)

select * from final
