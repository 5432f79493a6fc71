-- Every day of daily_sales_summary must equal the same day recomputed from fct_orders (orders,
-- items, revenue, margin), and every order day must be there. The two sides are stacked and
-- grouped by all their values: a day that matches forms a group of two rows; a day that
-- differs, or exists on one side only, leaves groups of one row, which fail the test. This also
-- catches an incremental run that missed a changed day.
with

fct_orders as (

    select * from {{ ref('fct_orders') }}

),

daily_sales_summary as (

    select * from {{ ref('daily_sales_summary') }}

),

recomputed as (

    select
        'fct_orders' as side,
        order_date,
        toUInt64(countIf(status != 'cancelled')) as orders,
        toUInt64(sumIf(item_count, status != 'cancelled')) as items,
        toDecimal64(sumIf(revenue, status != 'cancelled'), 2) as gross_revenue,
        toDecimal64(sum(net_revenue), 2) as net_revenue,
        toDecimal64(sum(net_margin), 2) as net_margin

    from fct_orders
    group by order_date

),

stored as (

    select
        'daily_sales_summary' as side,
        order_date,
        orders,
        items,
        gross_revenue,
        net_revenue,
        net_margin

    from daily_sales_summary

),

stacked as (

    select * from recomputed
    union all
    select * from stored

)

select
    order_date,
    orders,
    items,
    gross_revenue,
    net_revenue,
    net_margin,
    groupArray(side) as sides

from stacked
group by order_date, orders, items, gross_revenue, net_revenue, net_margin
having count() != 2
