-- Exercise 04: decide each order's payment status in int_payments_latest_per_order.
--
-- An order can have several payment attempts: a card payment fails and the customer retries
-- with PayPal (order 1010), or a stray attempt fails after the order was already paid. This
-- version takes the newest attempt, whatever its outcome, and counts every attempt as money
-- received. Both are wrong. The business rule:
--   * the deciding attempt is the latest attempt that did NOT fail (by created_at, then the
--     higher payment_id); only when every attempt failed is the order's status 'failed'
--   * amount_paid sums the attempts that succeeded; a failed attempt moved no money, and a
--     refunded one gave it back
-- Keep every column and its name; change only the lines marked TODO.
--
-- Check it with `course check 04` (or lesson.check("04") in notebook 04). The check copies
-- this file to models/intermediate/int_payments_latest_per_order.sql in a scratch copy of
-- the dbt project and runs `dbt run --select +int_payments_latest_per_order` on a copy of
-- raw.pg_payment_transactions with two orders added: 9001 (paid at 10:00, then a stray
-- attempt failed at 10:30) and 9002 (every attempt failed). Then it compares your rows with
-- the ones it computes from the payments itself.
with

payments as (

    select * from {{ ref('stg_source__payment_transactions') }}

),

deciding_attempt as (

    -- LIMIT 1 BY keeps the first row of each order in this sort order.
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
