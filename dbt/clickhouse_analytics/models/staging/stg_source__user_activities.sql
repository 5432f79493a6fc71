-- One row per distinct user event. The web shop sometimes records one event twice: same
-- customer, type, page and time under two activity ids. Grouping by everything but the id
-- keeps one row per event, under its first (lowest) id. (A GROUP BY is a hash aggregation;
-- ORDER BY ... LIMIT 1 BY would sort millions of events first.)
with

source as (

    select * from {{ source('source', 'user_activities') }}

),

renamed as (

    select
        toUInt64(activity_id) as activity_id,
        -- PostgreSQL ids arrive as signed integers; cast to the shop's key types so joins
        -- with the shop tables compare like with like.
        toUInt32(customer_id) as customer_id,
        activity_type,
        nullif(page, '') as page,
        occurred_at

    from source

),

deduplicated as (

    select
        min(activity_id) as first_activity_id,
        customer_id,
        activity_type,
        page,
        occurred_at

    from renamed
    group by customer_id, activity_type, page, occurred_at

),

final as (

    select
        first_activity_id as activity_id,
        customer_id,
        activity_type,
        page,
        occurred_at

    from deduplicated

)

select * from final
