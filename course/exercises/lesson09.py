"""Lesson 09, performance at scale: a projection that lets a daily report read a few hundred
rows instead of a million, without changing the report's query."""

from __future__ import annotations

import re
import time

from clickhouse_connect.driver.exceptions import DatabaseError

from ..scale import measure
from .harness import CheckContext, compare_frames, server_message
from .model import Exercise, Fail

TABLE = "sales"
ROWS = 1_000_000
# The dashboard's query: it must keep working unchanged, only faster.
REPORT = ("SELECT toDate(sold_at) AS day, count() AS sales, sum(amount) AS revenue "
          f"FROM {TABLE} GROUP BY day ORDER BY day")
# A day-level aggregate holds one row per day and part (about 360); anything finer-grained
# (per hour: 8,800 rows) misses the point of the exercise.
MAX_ROWS_READ = 5_000
SETUP = (
    f"CREATE TABLE {TABLE} (sale_id UInt64, sold_at DateTime, store_id UInt16, "
    "amount Decimal(10, 2)) ENGINE = MergeTree ORDER BY sale_id",
    # A sale every 31 seconds through 2024, 50 stores, amounts from 0.00 to 99.99: the same
    # rows on every run, so every learner's report has the same answer.
    f"INSERT INTO {TABLE} SELECT number, toDateTime('2024-01-01 00:00:00') + number * 31, "
    f"number % 50, toDecimal64((number * 7919) % 10000, 2) / 100 FROM numbers({ROWS})",
    # One part: the rows a projection read do not depend on how the insert was split.
    f"OPTIMIZE TABLE {TABLE} FINAL",
)
MUTATION_WAIT_S = 20.0


def wait_for_mutations(ctx: CheckContext, database: str) -> None:
    """Wait until the learner's ALTERs (MATERIALIZE PROJECTION runs in the background) end."""
    deadline = time.monotonic() + MUTATION_WAIT_S
    while True:
        pending = ctx.query("SELECT command, latest_fail_reason FROM system.mutations "
                            f"WHERE database = '{database}' AND NOT is_done")
        if pending.empty:
            return
        failed = pending[pending["latest_fail_reason"] != ""]
        if not failed.empty:
            raise Fail(f"`ALTER TABLE {TABLE} {failed.iloc[0]['command']}` failed: "
                       f"{failed.iloc[0]['latest_fail_reason'][:300]}")
        if time.monotonic() > deadline:
            raise Fail(f"`ALTER TABLE {TABLE} {pending.iloc[0]['command']}` did not finish "
                       f"within {MUTATION_WAIT_S:.0f} s; is the stack very busy? Check again.")
        time.sleep(0.1)


def projection_used(ctx: CheckContext, database: str) -> str:
    """The projection EXPLAIN says the report reads from, or "" for the table itself."""
    plan = "\n".join(ctx.query(f"EXPLAIN {REPORT}", database=database)["explain"])
    match = re.search(r"ReadFromMergeTree \(([^)]*)\)", plan)
    name = match.group(1) if match else ""
    return "" if name in ("", TABLE, f"{database}.{TABLE}") else name


def check_daily_projection(ctx: CheckContext) -> str:
    """The learner's script adds a projection to `sales` such that the daily report, unchanged,
    returns the same result while reading fewer than MAX_ROWS_READ rows."""
    ctx.learner_sql()  # a missing or empty file fails before any work
    database = ctx.fresh_database()
    try:
        for statement in SETUP:
            ctx.client.command(statement, settings={"database": database})
        expected = ctx.query(REPORT, database=database)
        ctx.run_learner_statements(database)
        wait_for_mutations(ctx, database)
        projections = ctx.query("SELECT name, toString(type) AS type, query FROM "
                                f"system.projections WHERE database = '{database}' "
                                f"AND table = '{TABLE}' ORDER BY name")
        if projections.empty:
            others = ctx.query(f"SELECT name, engine FROM system.tables WHERE database = "
                               f"'{database}' AND name != '{TABLE}' ORDER BY name")
            if not others.empty:
                made = ", ".join(f"{r.name} ({r.engine})" for r in others.itertuples())
                raise Fail(f"Your script made {made}, but no projection on {TABLE}. A "
                           "materialized view fills a table of its own, and the dashboard's "
                           f"query reads {TABLE} and cannot change. Add a projection "
                           f"instead (ALTER TABLE {TABLE} ADD PROJECTION ...): ClickHouse "
                           "picks it for the unchanged query by itself.")
            raise Fail(f"{TABLE} has no projection yet: add one with ALTER TABLE {TABLE} "
                       "ADD PROJECTION daily_totals (SELECT ... GROUP BY ...).")
        aggregates = projections[projections["type"] == "Aggregate"]
        if aggregates.empty:
            names = ", ".join(projections["name"])
            raise Fail(f"{names} is a normal projection: it keeps every row (only sorted "
                       "another way), so the daily report would still read 1,000,000 rows "
                       "from it. Make it an aggregate projection: SELECT the day and the "
                       "report's aggregates, with GROUP BY the day.")
        parts = ctx.query("SELECT DISTINCT name FROM system.projection_parts WHERE "
                          f"database = '{database}' AND table = '{TABLE}' AND active")
        built = set(parts["name"]) if "name" in parts.columns else set()
        unbuilt = [n for n in aggregates["name"] if n not in built]
        if len(unbuilt) == len(aggregates):
            raise Fail(f"The projection {unbuilt[0]} is defined but holds nothing yet: ADD "
                       "PROJECTION only applies to rows inserted from now on. Build it for "
                       f"the rows already in the table: ALTER TABLE {TABLE} MATERIALIZE "
                       f"PROJECTION {unbuilt[0]}.")
        try:
            measured = measure(ctx.client, REPORT, repeats=1, settings={"database": database})
        except DatabaseError as exc:
            raise Fail(f"The daily report fails after your script: {server_message(exc)}"
                       ) from None
        actual = measured.result
        before, after = int(expected["sales"].sum()), int(actual["sales"].sum())
        if len(actual) != len(expected) or before != after:
            raise Fail(f"The daily report now counts {after:,} sales over {len(actual)} days; "
                       f"before your script it counted {before:,} over {len(expected)}. Your "
                       f"script changed the rows of {TABLE}: only add a projection.")
        compare_frames(actual, expected, key=["day"], where="The daily report after your script")
        used = projection_used(ctx, database)
        if measured.rows_read >= MAX_ROWS_READ:
            if not used:
                shown = "; ".join(f"{r.name}: {r.query}" for r in aggregates.itertuples())
                raise Fail(f"The daily report still reads {measured.rows_read:,} rows: it does "
                           f"not use your projection ({shown}). ClickHouse uses an aggregate "
                           "projection only when it can compute every column of the query "
                           "from it: GROUP BY toDate(sold_at), with count() and sum(amount).")
            raise Fail(f"The daily report reads {measured.rows_read:,} rows from your "
                       f"projection {used}: it groups more finely than by day. GROUP BY "
                       f"toDate(sold_at) keeps one row per day; the goal is under "
                       f"{MAX_ROWS_READ:,} rows.")
    finally:
        ctx.drop_database(database)
    return (f"The daily report reads {measured.rows_read:,} rows instead of {ROWS:,} "
            f"(from projection {used}), and its answer is unchanged.")


EXERCISES = (
    Exercise("09_daily_projection", "A projection for the daily report", "SQL script",
             "09_daily_projection.sql", check_daily_projection),
)
