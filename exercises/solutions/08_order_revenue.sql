-- Exercise 08: keep a table of order revenue up to date incrementally.
--
-- order_revenue has one row per order: its status, revenue, net revenue and when the order
-- last changed (updated_at). Rebuilt on every run it reads every order ever placed. As an
-- incremental model, a run should read only the orders that are new or changed since the
-- last run, and replace their rows. Orders do change: an order placed last week is shipped,
-- delivered or returned today, and arrives again with a newer updated_at.
--
-- Complete the two TODOs:
--   1. the config: a strategy that replaces the row of a changed order (an order must never
--      appear twice, and the table should not be copied on every run) and the column that
--      identifies an order.
--   2. the filter: on an incremental run only, keep the orders changed since the newest
--      updated_at already in this table ({{ this }}).
-- Keep the columns, dbt_invocation_id included: it records which dbt run wrote each row,
-- which is how the check sees the rows your incremental run rewrote.
--
-- `course check 08` builds the model in a scratch copy of the project on scratch copies of
-- the raw tables, adds new orders and changes old ones, runs it again, and compares the
-- table with a full recomputation.

-- delete+insert: the run deletes the rows whose order_id comes again, then inserts the new
-- versions; the table itself stays (no copy of the unchanged rows).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        engine='MergeTree()',
        order_by='order_id'
    )
}}

select
    order_id,
    customer_id,
    order_date,
    status,
    revenue,
    net_revenue,
    updated_at,
    '{{ invocation_id }}' as dbt_invocation_id

from {{ ref('int_orders_with_revenue') }}

-- The watermark: the newest change this table already holds. Only on incremental runs: on
-- the first run (or --full-refresh) {{ this }} does not exist yet.
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
