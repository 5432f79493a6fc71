-- One row per order with its lines summed up, and the revenue rule of every mart in one place:
-- a cancelled order never earned anything, and a returned order gave its money back, so both
-- count 0 towards net_revenue and net_margin (their lines stay visible in revenue).
-- Margin is what is known: cost and margin sum the lines whose product cost is known, and
-- unknown_cost_revenue is the revenue of the other lines, so
-- margin = revenue - unknown_cost_revenue - cost.
with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

order_items as (

    select * from {{ ref('int_order_items_enriched') }}

),

order_totals as (

    select
        order_id,
        count() as line_count,
        sum(quantity) as item_count,
        sum(gross_amount) as gross_amount,
        sum(discount_amount) as discount_amount,
        sum(line_revenue) as revenue,
        -- sum() skips nulls: lines whose product cost is unknown add nothing here ...
        sum(line_cost) as cost,
        sum(line_margin) as margin,
        -- ... and their revenue is counted here instead.
        sumIf(line_revenue, line_cost is null) as unknown_cost_revenue

    from order_items
    group by order_id

),

joined as (

    select
        orders.order_id as order_id,
        orders.customer_id as customer_id,
        orders.order_ts as order_ts,
        orders.order_date as order_date,
        orders.status as status,
        orders.updated_at as updated_at,
        -- An order without lines gets zeros. ClickHouse already fills unmatched left-join
        -- columns with 0 by default; coalesce keeps that true under join_use_nulls = 1 too.
        toUInt64(coalesce(order_totals.line_count, 0)) as line_count,
        toUInt64(coalesce(order_totals.item_count, 0)) as item_count,
        toDecimal64(coalesce(order_totals.gross_amount, 0), 2) as gross_amount,
        toDecimal64(coalesce(order_totals.discount_amount, 0), 2) as discount_amount,
        toDecimal64(coalesce(order_totals.revenue, 0), 2) as revenue,
        toDecimal64(coalesce(order_totals.cost, 0), 2) as cost,
        toDecimal64(coalesce(order_totals.margin, 0), 2) as margin,
        toDecimal64(coalesce(order_totals.unknown_cost_revenue, 0), 2) as unknown_cost_revenue

    from orders
    left join order_totals on orders.order_id = order_totals.order_id

),

final as (

    select
        *,
        status not in ('cancelled', 'returned') as is_revenue,
        if(is_revenue, revenue, toDecimal64(0, 2)) as net_revenue,
        if(is_revenue, margin, toDecimal64(0, 2)) as net_margin

    from joined

)

select * from final
