-- One row per order that has payment attempts, with the attempt that decides the order's
-- payment status. Rule: the latest attempt that did not fail (by created_at, then payment_id);
-- only when every attempt failed is the order's status 'failed'. So a payment that failed and
-- was retried successfully ends as 'succeeded', and a stray failed attempt after a success
-- does not turn a paid order into an unpaid one. A refund is a newer version of the succeeded
-- attempt (see stg_source__payment_transactions), so it decides as 'refunded'.
with

payments as (

    select * from {{ ref('stg_source__payment_transactions') }}

),

deciding_attempt as (

    -- LIMIT 1 BY keeps the first row of each order in this order: attempts that did not fail
    -- first, then the newest.
    select
        order_id,
        payment_id,
        payment_status,
        payment_method,
        amount as payment_amount

    from payments
    order by
        order_id asc,
        payment_status != 'failed' desc,
        created_at desc,
        payment_id desc
    limit 1 by order_id

),

attempts as (

    select
        order_id,
        count() as attempt_count,
        countIf(payment_status = 'failed') as failed_attempt_count,
        sumIf(amount, payment_status = 'succeeded') as amount_paid,
        max(created_at) as last_attempt_at

    from payments
    group by order_id

),

final as (

    select
        deciding_attempt.order_id as order_id,
        deciding_attempt.payment_id as payment_id,
        deciding_attempt.payment_status as payment_status,
        deciding_attempt.payment_method as payment_method,
        deciding_attempt.payment_amount as payment_amount,
        toDecimal64(attempts.amount_paid, 2) as amount_paid,
        attempts.attempt_count as attempt_count,
        attempts.failed_attempt_count as failed_attempt_count,
        attempts.last_attempt_at as last_attempt_at

    from deciding_attempt
    inner join attempts on deciding_attempt.order_id = attempts.order_id

)

select * from final
