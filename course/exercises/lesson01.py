"""Lesson 01, ClickHouse fundamentals: a table sorted for the question it answers."""

from __future__ import annotations

from .harness import CheckContext
from .model import Exercise, Fail

TABLE = "orders_by_customer"


def check_sorting_key(ctx: CheckContext) -> str:
    """The learner's script creates `orders_by_customer`, a MergeTree copy of raw.orders whose
    primary key serves lookups by customer_id."""
    ctx.require_tables("raw.orders", lesson="02")
    database = ctx.fresh_database()
    try:
        ctx.run_learner_statements(database)
        tables = ctx.query("SELECT name, engine, sorting_key FROM system.tables "
                           f"WHERE database = '{database}'")
        found = tables[tables["name"] == TABLE]
        if found.empty:
            made = ", ".join(tables["name"]) or "no table"
            raise Fail(f"Your script made {made}; it should create a table named {TABLE}.")
        engine, sorting_key = found.iloc[0]["engine"], found.iloc[0]["sorting_key"]
        if not engine.endswith("MergeTree"):
            raise Fail(f"{TABLE} uses ENGINE = {engine}. Only the MergeTree family has a "
                       "primary index: use ENGINE = MergeTree.")
        expected = ctx.query("SELECT count() AS n, sum(order_id) AS ids FROM raw.orders")
        actual = ctx.query(f"SELECT count() AS n, sum(order_id) AS ids FROM `{database}`.{TABLE}")
        if (actual.iloc[0]["n"], actual.iloc[0]["ids"]) != (expected.iloc[0]["n"],
                                                           expected.iloc[0]["ids"]):
            raise Fail(f"{TABLE} holds {actual.iloc[0]['n']} rows; raw.orders has "
                       f"{expected.iloc[0]['n']}. Fill it with every order: "
                       f"INSERT INTO {TABLE} SELECT ... FROM raw.orders.")
        first = sorting_key.split(",")[0].strip()
        if first != "customer_id":
            shown = sorting_key or "tuple() (nothing)"
            raise Fail(f"{TABLE} is sorted by {shown}. The primary index can skip granules "
                       "for `WHERE customer_id = ...` only when customer_id is the first "
                       "column of ORDER BY.")
        plan = "\n".join(ctx.query(
            f"EXPLAIN indexes = 1 SELECT count() FROM `{database}`.{TABLE} "
            "WHERE customer_id = 7")["explain"])
        if "PrimaryKey" not in plan or "customer_id" not in plan:
            raise Fail("The primary key is not used for `WHERE customer_id = 7`; EXPLAIN "
                       f"indexes = 1 shows:\n{plan}")
    finally:
        ctx.drop_database(database)
    return (f"{TABLE} is sorted by ({sorting_key}): EXPLAIN shows the primary key "
            "narrowing `WHERE customer_id = 7` to the matching granules.")


EXERCISES = (
    Exercise("01_sorting_key", "Sort a table for the question it answers", "SQL script",
             "01_sorting_key.sql", check_sorting_key),
)
