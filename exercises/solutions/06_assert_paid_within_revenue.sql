-- Exercise 06: a singular data test that no order was paid more than it is worth.
--
-- A singular test is a SELECT in tests/ that returns the rows breaking a rule: dbt runs it,
-- and the test passes when it returns no row and fails on any row. The rule here: an order's
-- amount_paid (the payments that succeeded) never exceeds its revenue. An order paid twice,
-- or a failed payment counted as paid, breaks it.
-- This version can never fail: `where false` returns no row whatever the data holds.
-- Read the orders from fct_orders with ref(), and return the ones that break the rule, with
-- the columns someone needs to look into them.
--
-- Check it with `course check 06` (or lesson.check("06") in notebook 06). The check copies
-- this file to tests/assert_paid_within_revenue.sql in a scratch copy of the dbt project,
-- builds the models it reads, runs `dbt test --select assert_paid_within_revenue` (it must
-- pass on the real data), then inserts an order paid twice into the scratch fct_orders and
-- runs it again (now it must fail: a test that cannot fail protects nothing).
select
    order_id,
    status,
    revenue,
    amount_paid

from {{ ref('fct_orders') }}
where amount_paid > revenue
