-- Exercise 02: stock per category, live from PostgreSQL.
--
-- The warehouse team asks: how many units of each product category do we hold, right now?
-- Stock levels live in the PostgreSQL source (table inventory: one row per product and
-- warehouse) and change all day; a product's category is in ClickHouse (raw.products).
--
-- Write ONE query that returns one row per category with the columns
--     category        every category of raw.products, each once; a category whose products
--                     have no stock row at all shows 0 (nothing on hand is an answer too)
--     units_on_hand   quantity_on_hand summed over the category's products and every warehouse
-- The stock must be read LIVE through ClickHouse's database pg_source (engine PostgreSQL),
-- not from the ingested copy raw.pg_inventory, which is only as fresh as its last ingest.
-- Change only what the TODOs ask; then run `course check 02`.

SELECT
    p.category AS category,
    -- TODO: the units on hand of the category's products, summed over every warehouse
    0 AS units_on_hand
FROM raw.products AS p
-- TODO: join the live stock levels, pg_source.inventory, on product_id, keeping the
--       products that have no stock row
GROUP BY p.category
ORDER BY p.category;
