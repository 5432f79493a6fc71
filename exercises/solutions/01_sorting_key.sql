-- Exercise 01: sort a table for the question it answers.
--
-- Support staff look up one customer's orders all day: WHERE customer_id = ...
-- raw.orders is sorted by (order_ts, order_id), so such a lookup reads every granule.
-- Create `orders_by_customer`, a copy of the orders whose primary key serves that lookup,
-- and fill it. Change only what the TODO asks; then run `course check 01`.
--
-- Your statements run in a scratch database of the check, so do not name a database
-- in CREATE TABLE.

CREATE TABLE orders_by_customer
(
    order_id UInt64,
    customer_id UInt32,
    order_ts DateTime,
    status LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY (customer_id, order_ts);

INSERT INTO orders_by_customer
SELECT order_id, customer_id, order_ts, status
FROM raw.orders;
