-- The calendar: one row per day from the first to the last order day. It earns its place by
-- giving reports the days without any sale (a daily chart has no gaps) and ready-made
-- calendar attributes to group by (ISO week, month, weekday, weekend).
-- Tiny and static: ordered by the day, not partitioned.
{{
    config(
        materialized='table',
        engine='MergeTree()',
        order_by='date_day'
    )
}}

with

bounds as (

    select
        min(order_date) as first_day,
        max(order_date) as last_day

    from {{ ref('stg_shop__orders') }}

),

days as (

    -- range(n) is [0, n - 1]; arrayJoin turns the array of days into one row per day.
    select
        arrayJoin(
            arrayMap(
                offset -> addDays(first_day, offset),
                range(toUInt32(dateDiff('day', first_day, last_day) + 1))
            )
        ) as date_day

    from bounds

),

final as (

    select
        date_day,
        toUInt16(toYear(date_day)) as calendar_year,
        toUInt8(toQuarter(date_day)) as calendar_quarter,
        toUInt8(toMonth(date_day)) as calendar_month,
        monthName(date_day) as month_name,
        toUInt8(toISOWeek(date_day)) as iso_week,
        toUInt8(toDayOfWeek(date_day)) as day_of_week,
        dateName('weekday', date_day) as day_name,
        toBool(toDayOfWeek(date_day) >= 6) as is_weekend

    from days

)

select * from final
