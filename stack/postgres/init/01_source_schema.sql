-- The PostgreSQL source database: the operational tables of the shop (docs/data-contract.md).
-- Shared by both modes: Docker runs this file from /docker-entrypoint-initdb.d in POSTGRES_DB,
-- the loader (course/loaders) runs it in the embedded stack. Idempotent: IF NOT EXISTS.
-- The rows come from data/postgres/*.csv, copied in by the loader (`course load`).

-- Clickstream events, append-only: ClickHouse ingests them by activity_id (new ids only).
CREATE TABLE IF NOT EXISTS user_activities (
    activity_id bigint PRIMARY KEY,
    customer_id integer NOT NULL,
    activity_type text NOT NULL,  -- page_view, add_to_cart, checkout, login
    page text,
    occurred_at timestamptz NOT NULL
);

-- Stock per product and warehouse, updated in place: ClickHouse ingests rows whose
-- updated_at is newer than the newest it has, so every UPDATE must also set updated_at.
CREATE TABLE IF NOT EXISTS inventory (
    product_id integer,
    warehouse text,
    quantity_on_hand integer NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (product_id, warehouse)
);

-- Payments, updated in place (a refund changes status and updated_at); ingested like inventory.
CREATE TABLE IF NOT EXISTS payment_transactions (
    payment_id bigint PRIMARY KEY,
    order_id bigint NOT NULL,
    amount numeric(10, 2) NOT NULL,
    method text NOT NULL,  -- card, paypal, bank_transfer
    status text NOT NULL,  -- succeeded, failed, refunded
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The incremental ingestion asks for "updated_at > newest ingested"; these keep that an index
-- range scan instead of a full scan as the tables grow.
CREATE INDEX IF NOT EXISTS inventory_updated_at ON inventory (updated_at);
CREATE INDEX IF NOT EXISTS payment_transactions_updated_at ON payment_transactions (updated_at);
