"""Lesson 05, dbt marts: dim_products as a stored, sorted MergeTree table with its stock.

The check builds the learner's dim_products (and what it refs) in a scratch copy of the
project, reads what ClickHouse made of it from system.tables, and compares its rows with the
products and their stock computed in pandas from raw.products and raw.pg_inventory.
"""

from __future__ import annotations

import re

import pandas as pd

from .dbt_checks import dbt_outcomes, dbt_says
from .harness import CheckContext, compare_frames, require_columns, scratch_project
from .model import Exercise, Fail

MODEL = "dim_products"
COLUMNS = ["product_id", "product_name", "category", "price", "cost", "unit_margin",
           "stock_on_hand", "warehouse_count", "inventory_updated_at", "updated_at"]
JOIN_USE_NULLS = ("A ClickHouse LEFT JOIN fills the columns of an unmatched row with their type's "
                  "default (0, 1970-01-01) unless join_use_nulls = 1: add "
                  "query_settings={'join_use_nulls': 1} to the config.")


def expected_products(products: pd.DataFrame, inventory: pd.DataFrame) -> pd.DataFrame:
    """One row per product with its stock summed over the warehouses, in pandas."""
    stock = inventory.groupby("product_id").agg(
        stock_on_hand=("quantity_on_hand", "sum"), warehouse_count=("warehouse", "count"),
        inventory_updated_at=("updated_at", "max")).reset_index()
    stock["product_id"] = stock["product_id"].astype("int64")
    frame = products.assign(product_id=products["product_id"].astype("int64"))
    frame = frame.merge(stock, on="product_id", how="left")
    margin = [None if pd.isna(cost) else float(price) - float(cost)
              for price, cost in zip(frame["price"], frame["cost"], strict=True)]
    return pd.DataFrame({
        "product_id": frame["product_id"],
        "product_name": frame["product_name"].str.strip(" "),
        "category": frame["category"],
        "price": frame["price"],
        "cost": frame["cost"],
        "unit_margin": pd.Series(margin, dtype=object),
        "stock_on_hand": frame["stock_on_hand"].fillna(0).astype("int64"),
        "warehouse_count": frame["warehouse_count"].fillna(0).astype("int64"),
        "inventory_updated_at": frame["inventory_updated_at"],
        "updated_at": frame["updated_at"],
    })


def build_failed_hint(output: str) -> str:
    """A sentence to add when dbt refused the model for its contract."""
    if "contract" not in output.lower():
        return ""
    if re.search(r"inventory_updated_at\s*\|\s*DateTime64", output):
        return "\n" + JOIN_USE_NULLS
    return ("\nThe contract in _core_models.yml lists every column with its exact type; make "
            "your SELECT return those names and types (toInt64(...), toUInt64(...)).")


def table_hint(ctx: CheckContext, database: str) -> str:
    """Fail unless dim_products is a MergeTree table sorted by product_id; returns its
    sorting key."""
    found = ctx.query("SELECT engine, sorting_key FROM system.tables "
                      f"WHERE database = '{database}' AND name = '{MODEL}'")
    if found.empty:
        raise Fail(f"dbt built no {MODEL} in {database}: is the model's name unchanged?")
    engine, sorting_key = found.iloc[0]["engine"], found.iloc[0]["sorting_key"]
    if engine == "View":
        raise Fail(f"{MODEL} is a view: every query recomputes its joins. A mart is stored: "
                   "materialized='table' with engine='MergeTree()' in its config.")
    if not engine.endswith("MergeTree"):
        raise Fail(f"{MODEL} uses ENGINE = {engine}. Marts use the MergeTree family "
                   "(engine='MergeTree()'): sorted parts on disk, a primary index, merges.")
    key = re.sub(r"[()\s]", "", sorting_key)
    if key != "product_id":
        shown = sorting_key or "nothing (ORDER BY tuple())"
        raise Fail(f"{MODEL} is sorted by {shown}. A dimension is looked up and joined by its "
                   "key: order_by='product_id'.")
    return key


def stock_hint(actual: pd.DataFrame, expected: pd.DataFrame, inventory: pd.DataFrame) -> None:
    """Fail naming the first product whose stock columns are wrong."""
    merged = expected.merge(actual[COLUMNS], on="product_id", suffixes=("", "_yours"))
    merged = merged.sort_values("product_id")
    for row in merged.itertuples():
        if int(row.stock_on_hand_yours) != int(row.stock_on_hand) or \
                int(row.warehouse_count_yours) != int(row.warehouse_count):
            counts = inventory[inventory["product_id"] == row.product_id].sort_values(
                "warehouse")
            parts = " + ".join(f"{w} {q}" for w, q in zip(counts["warehouse"],
                                                          counts["quantity_on_hand"],
                                                          strict=True))
            raise Fail(f"Product {row.product_id} has stock_on_hand "
                       f"{int(row.stock_on_hand_yours)} in {int(row.warehouse_count_yours)} "
                       f"warehouses; expected {int(row.stock_on_hand)} "
                       f"({parts or 'no warehouse counts it'}) in {int(row.warehouse_count)}. "
                       "Left join int_product_stock on product_id and take its "
                       "stock_on_hand and warehouse_count (coalesce(..., 0) for products no "
                       "warehouse counts).")
    for row in merged.itertuples():
        ours, yours = row.inventory_updated_at, row.inventory_updated_at_yours
        if pd.isna(ours) and not pd.isna(yours):
            raise Fail(f"Product {row.product_id} is counted in no warehouse, but its "
                       f"inventory_updated_at is {yours}; expected NULL. {JOIN_USE_NULLS}")
        if not pd.isna(ours) and (pd.isna(yours) or str(ours) != str(yours)):
            raise Fail(f"Product {row.product_id}'s inventory_updated_at is {yours}; expected "
                       f"{ours}, its newest inventory count: take it from int_product_stock.")


def check_dim_products(ctx: CheckContext) -> str:
    """The learner's dim_products is a MergeTree table sorted by product_id whose rows are the
    products with their stock from the inventory."""
    ctx.learner_text()
    ctx.require_tables("raw.products", "raw.pg_inventory", lesson="02")
    products = ctx.query("SELECT * FROM raw.products")
    inventory = ctx.query("SELECT * FROM raw.pg_inventory FINAL")
    expected = expected_products(products, inventory)
    with scratch_project(ctx) as project:
        project.place(f"models/marts/core/{MODEL}.sql")
        proc, outcomes = dbt_outcomes(project, "run", "--select", f"+{MODEL}")
        if outcomes.get(MODEL) != "success":
            output = proc.stdout + proc.stderr
            raise Fail(f"Building {MODEL} failed. dbt says:\n{dbt_says(proc)}"
                       f"{build_failed_hint(output)}")
        database = project.database("marts")
        sorting_key = table_hint(ctx, database)
        actual = ctx.query(f"SELECT * FROM `{database}`.`{MODEL}`")
    where = f"Your {MODEL}"
    require_columns(actual, COLUMNS, where)
    compare_frames(actual, expected[["product_id"]], ["product_id"], where)
    stock_hint(actual, expected, inventory)
    compare_frames(actual, expected, ["product_id"], where)
    return (f"{MODEL} is a MergeTree table sorted by {sorting_key} with all {len(expected)} "
            f"products and their {int(expected['stock_on_hand'].sum())} units on hand.")


EXERCISES = (
    Exercise("05_dim_products", "Build dim_products as a MergeTree mart", "dbt model",
             "05_dim_products.sql", check_dim_products),
)
