-- Exercise 09: make the daily report read a few hundred rows instead of a million.
--
-- The dashboard runs this query on the table `sales` (1,000,000 sales through 2024, sorted
-- by sale_id) every few seconds, and it reads every row each time:
--
--     SELECT toDate(sold_at) AS day, count() AS sales, sum(amount) AS revenue
--     FROM sales GROUP BY day ORDER BY day
--
-- The dashboard's query cannot change. Add an AGGREGATE PROJECTION to `sales`: a copy of the
-- table, stored inside each part, that holds the report already grouped by day, so that
-- ClickHouse answers the unchanged query from it. The check builds `sales`, runs your
-- statements, then the report: same answer, and fewer than 5,000 rows read.
--
--     ALTER TABLE t ADD PROJECTION name (SELECT <keys>, <aggregates> GROUP BY <keys>);
--
-- Your statements run in a scratch database of the check: do not name a database.
-- Then run `course check 09`.

ALTER TABLE sales
    ADD PROJECTION daily_totals
    (
        SELECT
            toDate(sold_at),
            count(),
            sum(amount)
        GROUP BY toDate(sold_at)
    );

-- Builds the projection for the existing parts (a mutation; the check waits for it).
ALTER TABLE sales MATERIALIZE PROJECTION daily_totals;
