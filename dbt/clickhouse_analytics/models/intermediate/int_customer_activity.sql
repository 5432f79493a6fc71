-- One row per customer with web activity: how much and how recently they used the shop.
with

activities as (

    select * from {{ ref('stg_source__user_activities') }}

),

per_customer as (

    select
        customer_id,
        count() as activity_count,
        countIf(activity_type = 'page_view') as page_view_count,
        max(occurred_at) as last_activity_at

    from activities
    group by customer_id

)

select * from per_customer
