-- Raw tables of the course: the CSV files in data/ and the ingested copies of the PostgreSQL
-- source. Column names and types follow docs/data-contract.md; the dbt project reads them.
--
-- Shared by both modes: Docker runs this file from /docker-entrypoint-initdb.d, the embedded
-- stack's loader (course/loaders) runs it statement by statement. So: plain SQL, one statement
-- per `;` at the end of a line, and idempotent (IF NOT EXISTS everywhere).
-- Engines are chosen per table below; partitions only where rows form a time series, because
-- every partition is a separate set of files and tiny partitions cost more than they save.

CREATE DATABASE IF NOT EXISTS raw;

-- A dimension: no partitions (it is small and has no time axis). Lessons join orders to
-- customers and look customers up by id, so the id is the sorting key.
CREATE TABLE IF NOT EXISTS raw.customers
(
    customer_id UInt32,
    first_name String,
    last_name String,
    email String,
    country LowCardinality(String),
    city String,
    signup_date Date,
    updated_at DateTime
)
ENGINE = MergeTree
ORDER BY customer_id;

-- A dimension: no partitions; joined to order lines by product id.
-- `cost` is Nullable on purpose: an empty cost means "not known yet", and the default 0 would
-- turn that product's margin into 100 % (see data/README.md).
CREATE TABLE IF NOT EXISTS raw.products
(
    product_id UInt32,
    product_name String,
    category LowCardinality(String),
    price Decimal(10, 2),
    cost Nullable(Decimal(10, 2)),
    updated_at DateTime
)
ENGINE = MergeTree
ORDER BY product_id;

-- A time series: monthly partitions on the order time, so a date-range query or dropping a
-- month touches only its partitions. Most lessons filter and group by time (daily revenue,
-- orders last week), so the sorting key starts with order_ts; order_id makes it unique.
CREATE TABLE IF NOT EXISTS raw.orders
(
    order_id UInt64,
    customer_id UInt32,
    order_ts DateTime,
    status LowCardinality(String),
    updated_at DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(order_ts)
ORDER BY (order_ts, order_id);

-- Order lines have no time column of their own, so no partitions. They are read together with
-- their order (joins on order_id), so lines of one order sit next to each other.
CREATE TABLE IF NOT EXISTS raw.order_items
(
    order_item_id UInt64,
    order_id UInt64,
    product_id UInt32,
    quantity UInt16,
    unit_price Decimal(10, 2),
    discount_pct Decimal(5, 2)
)
ENGINE = MergeTree
ORDER BY (order_id, order_item_id);

-- Ingested from PostgreSQL by activity_id (append-only events: a new id is a new row).
-- A time series: monthly partitions on occurred_at. The sorting key starts with the event type
-- (4 values) and then time, so "page views per day" and funnel steps over a date range read
-- only the matching ranges; activity_id makes the key unique.
CREATE TABLE IF NOT EXISTS raw.pg_user_activities
(
    activity_id Int64,
    customer_id Int32,
    activity_type String,
    page String,
    occurred_at DateTime64(6, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (activity_type, occurred_at, activity_id);

-- Ingested from PostgreSQL by updated_at: a changed row arrives again with a newer updated_at,
-- and ReplacingMergeTree keeps the newest version per sorting key (read with FINAL for the
-- deduplicated state). The sorting key is therefore the source's primary key. No partitions:
-- stock levels are current state, not a time series, and ReplacingMergeTree only replaces rows
-- within one partition, so partitioning by updated_at would keep old versions forever.
CREATE TABLE IF NOT EXISTS raw.pg_inventory
(
    product_id Int32,
    warehouse String,
    quantity_on_hand Int32,
    updated_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (product_id, warehouse);

-- Ingested from PostgreSQL by updated_at, newest version per payment_id kept (as above).
-- Payments are a time series: monthly partitions on created_at, which never changes for a
-- payment, so all versions of one payment land in the same partition and replace each other.
CREATE TABLE IF NOT EXISTS raw.pg_payment_transactions
(
    payment_id Int64,
    order_id Int64,
    amount Decimal(10, 2),
    method String,
    status String,
    created_at DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY payment_id;
