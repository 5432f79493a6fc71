-- Exercise 10 (capstone): a mart that answers "which categories earn the money, month by
-- month?"
--
-- fct_monthly_category_revenue has one row per month and product category:
--   order_month   first day of the month the orders were placed
--   category      the product's category
--   orders        orders with at least one line in that category, each counted once
--   units         units sold in that category
--   net_revenue   revenue of those lines after discounts, in euros
-- The revenue rule of every mart: a cancelled order earned nothing and a returned order gave
-- its money back, so neither counts in any column.
--
-- Its columns and their exact types are the contract in 10_fct_monthly_category_revenue.yml,
-- which you complete too (description and tests): marts enforce their contracts, so dbt
-- refuses to build a model whose columns differ.
--
-- Rules: read the project's models with ref(), not raw tables. int_order_items_enriched has
-- each line's category, quantity and line_revenue (after the discount); stg_shop__orders has
-- each order's order_date and status. Store the mart as a MergeTree table ordered for the
-- dashboard's filters (a month, a category).
--
-- The check copies both files into a scratch copy of the dbt project (models/marts/metrics/),
-- builds the model with everything upstream, runs its tests, compares its rows with numbers
-- computed from raw.*, and asks Airflow whether the Cosmos DAG renders a task for it, with no
-- change to the DAG file. Run `course check 10`.
-- TODO: order the table by the columns the dashboard filters on, month first (order_by).
{{
    config(
        materialized='table',
        engine='MergeTree()',
        order_by='tuple()'
    )
}}

with

order_lines as (

    select * from {{ ref('int_order_items_enriched') }}

),

shop_orders as (

    select * from {{ ref('stg_shop__orders') }}

),

final as (

    select
        toStartOfMonth(shop_orders.order_date) as order_month,
        order_lines.category as category,
        -- TODO: count each order once per category, not once per line.
        count() as orders,
        sum(order_lines.quantity) as units,
        toDecimal64(sum(order_lines.line_revenue), 2) as net_revenue

    from order_lines
    inner join shop_orders on order_lines.order_id = shop_orders.order_id
    -- TODO: apply the revenue rule (leave out cancelled and returned orders).
    group by order_month, category

)

select * from final
