"""Lesson 02, loading data: stock per category, read live from PostgreSQL through ClickHouse."""

from __future__ import annotations

import re

import pandas as pd
from clickhouse_connect.driver.exceptions import DatabaseError

from ..loaders import postgres
from ..loaders.schema import PG_SOURCE_DB
from .harness import (
    CheckContext,
    compare_frames,
    is_missing,
    require_columns,
    same_value,
    server_message,
)
from .model import Exercise, Fail

COLUMNS = ["category", "units_on_hand"]
# A step of the query plan that reads PostgreSQL: the PostgreSQL database engine and the
# postgresql() table function both show as ReadFromPostgreSQL (older servers named the step
# ReadFromStorage (PostgreSQL)).
LIVE_READ = re.compile(r"ReadFromPostgreSQL|ReadFromStorage \(PostgreSQL")
INGESTED_COPY = "raw.pg_inventory"


def source_frames(ctx: CheckContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The products with their category (from ClickHouse) and the stock rows straight from
    PostgreSQL (psycopg): what the expected answer is computed from, without the learner's
    query."""
    with postgres.connect(ctx.settings) as conn:
        rows = conn.execute("SELECT product_id, quantity_on_hand FROM inventory").fetchall()
    stock = pd.DataFrame(rows, columns=["product_id", "quantity_on_hand"], dtype="int64")
    products = ctx.query("SELECT toInt64(product_id) AS product_id, toString(category) "
                         "AS category FROM raw.products")
    return products, stock


def expected_stock(products: pd.DataFrame, stock: pd.DataFrame) -> pd.DataFrame:
    """Units on hand per category: every category of raw.products, 0 when its products have
    no stock row."""
    merged = products.merge(stock, on="product_id", how="left")
    merged["quantity_on_hand"] = merged["quantity_on_hand"].fillna(0).astype("int64")
    return (merged.groupby("category", as_index=False)["quantity_on_hand"].sum()
            .rename(columns={"quantity_on_hand": "units_on_hand"}))


def row_counts(products: pd.DataFrame, stock: pd.DataFrame) -> pd.DataFrame:
    """Rows per category that a count() instead of a sum() gives: `stock_rows` (stock rows
    only) and `joined_rows` (rows of the LEFT JOIN, where a product without stock is one row
    too). For a targeted hint."""
    merged = products.merge(stock, on="product_id", how="left")
    merged["stock_rows"] = merged["quantity_on_hand"].notna().astype("int64")
    merged["joined_rows"] = 1
    return merged.groupby("category", as_index=False)[["stock_rows", "joined_rows"]].sum()


def query_plan(ctx: CheckContext) -> str:
    """EXPLAIN of the learner's query: which tables it reads, and how."""
    statement = ctx.learner_sql()[0]
    try:
        return "\n".join(ctx.client.query_df(f"EXPLAIN {statement}",
                                             settings={"database": "default"})["explain"])
    except DatabaseError as exc:
        raise Fail(f"EXPLAIN of your query failed: {server_message(exc)}\n"
                   f"{ctx.shown_file} should hold one SELECT.") from None


def total(frame: pd.DataFrame) -> float:
    return float(pd.to_numeric(frame["units_on_hand"], errors="coerce").fillna(0).sum())


def check_live_stock(ctx: CheckContext) -> str:
    """The learner's query returns units on hand per category of raw.products, reading the
    stock live through pg_source, with every category present (0 when it has no stock)."""
    ctx.require_tables("raw.products", lesson="02")
    if not int(ctx.scalar(f"SELECT count() FROM system.databases WHERE name = '{PG_SOURCE_DB}'")):
        raise Fail(f"The database {PG_SOURCE_DB} does not exist yet: run `course load` (or "
                   "the load cell of lesson 02), then check again.")
    actual = ctx.learner_query()
    require_columns(actual, COLUMNS, "Your result")
    plan = query_plan(ctx)
    if not LIVE_READ.search(plan):
        if INGESTED_COPY in plan:
            raise Fail(f"Your query reads {INGESTED_COPY}, the copy ingested into ClickHouse: "
                       "it is only as fresh as the last ingest, and read without FINAL it "
                       "counts every ingested version of a changed row. Read the live stock "
                       f"levels through {PG_SOURCE_DB}.inventory instead.")
        raise Fail("Your query reads nothing from PostgreSQL: the units on hand are in the "
                   f"source table inventory. JOIN {PG_SOURCE_DB}.inventory (read live by "
                   "ClickHouse's PostgreSQL engine) to raw.products ON product_id, and sum "
                   "quantity_on_hand.")

    products, stock = source_frames(ctx)
    expected = expected_stock(products, stock)
    categories = {str(c) for c in actual["category"] if not is_missing(c)}
    missing = expected[~expected["category"].isin(categories)]
    if len(missing):
        empty = missing[missing["units_on_hand"] == 0]
        if len(empty):
            name = empty.iloc[0]["category"]
            raise Fail(f"Your result has no row for {name!r}, whose products have no stock "
                       "row in inventory: an inner JOIN drops them (so does starting FROM the "
                       "inventory). Start FROM raw.products and LEFT JOIN the stock, so every "
                       "category appears, with 0 units when it has none.")
        name = missing.iloc[0]["category"]
        raise Fail(f"Your result has no row for {name!r}: every category of raw.products "
                   "should appear once. Is a WHERE clause filtering products out?")
    strays = [c for c in actual["category"] if is_missing(c) or str(c) not in
              set(expected["category"])]
    if strays:
        raise Fail(f"Your result has a row for category {strays[0]!r}, which no product has: "
                   "stock rows joined to no product (a RIGHT JOIN, or the join on the wrong "
                   "column?). Start FROM raw.products and LEFT JOIN pg_source.inventory ON "
                   "product_id.")
    doubled = actual[actual["category"].duplicated()]
    if len(doubled):
        raise Fail(f"Your result has more than one row for {doubled.iloc[0]['category']!r}: "
                   "one row per category, so GROUP BY the category alone.")
    nulls = actual[actual["units_on_hand"].map(is_missing)]
    if len(nulls):
        raise Fail(f"units_on_hand is NULL for {nulls.iloc[0]['category']!r}; a category "
                   "without stock should show 0: wrap the sum in coalesce(..., 0).")

    yours, ours = total(actual), total(expected)
    if yours > ours:
        raise Fail(f"Your units add up to {yours:,.0f}, but the live stock of the products "
                   f"is {ours:,.0f} units in all: some stock is counted more than once. "
                   "Join each inventory row to its one product ON product_id; a copy of the "
                   "stock that keeps several versions of a row (raw.pg_inventory read "
                   "without FINAL) counts each version.")
    counted = actual.merge(row_counts(products, stock), on="category")
    if yours < ours and any(all(same_value(getattr(row, rows), row.units_on_hand, 0)
                                for row in counted.itertuples())
                            for rows in ("stock_rows", "joined_rows")):
        raise Fail("units_on_hand counts stock rows (one per product and warehouse), not "
                   "units: sum(quantity_on_hand) instead of count().")
    compare_frames(actual, expected, key=["category"], where="Your result")
    listing = ", ".join(f"{row.category} {int(row.units_on_hand):,}"
                        for row in expected.sort_values("category").itertuples())
    return (f"Units on hand per category, read live from PostgreSQL: {listing} "
            f"({ours:,.0f} in all).")


EXERCISES = (
    Exercise("02_live_stock", "Stock per category, live from PostgreSQL", "SQL script",
             "02_live_stock.sql", check_live_stock),
)
