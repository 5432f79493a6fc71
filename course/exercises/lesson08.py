"""Lesson 08, incremental models: an order table that an incremental run keeps up to date by
processing only the orders that are new or changed since the last run.

The check works on copies: scratch raw tables (`check_08_order_revenue_raw`, filled from
`raw.*`) and a scratch copy of the dbt project that reads them (`--vars raw_database`). It
builds the learner's model, adds new orders and changes old ones in the scratch raw tables,
runs the model again, and then asks three questions:

1. Is the table right? It must equal a full recomputation: the project's own
   int_orders_with_revenue view over the same raw tables, which always reads everything.
2. Did the incremental run process only the new and changed orders? Every row records the
   dbt run that wrote it (`dbt_invocation_id`); the rows the second run wrote must be those.
3. Was the table updated in place? A rebuild swaps in a new table (a new UUID), which is what
   dbt-clickhouse's default (legacy) strategy does on every run.
"""

from __future__ import annotations

import re

import pandas as pd

from .dbt_checks import copy_raw_tables, raw_vars
from .harness import (
    CheckContext,
    ScratchProject,
    compare_frames,
    dbt_errors,
    require_columns,
    scratch_project,
)
from .model import Exercise, Fail

MODEL = "order_revenue"
MODEL_PATH = f"models/exercise/{MODEL}.sql"
RAW_TABLES = ("orders", "order_items", "products")  # what int_orders_with_revenue reads
COLUMNS = ["order_id", "customer_id", "order_date", "status", "revenue", "net_revenue",
           "updated_at"]
AUDIT = "dbt_invocation_id"


def change_orders(ctx: CheckContext, raw_db: str) -> tuple[list[int], list[int]]:
    """What the shop's next export brings: two new orders (with one line each), the first on
    the same day as the latest order so far, and two old orders changed (one returned, one
    moved on a step), all with updated_at beyond every earlier one. Returns (new order ids,
    changed order ids)."""
    q = ctx.query(f"SELECT max(order_id) AS last_id, max(updated_at) AS newest, "
                  f"max(order_ts) AS latest, "
                  f"(SELECT max(order_item_id) FROM `{raw_db}`.order_items) AS last_item, "
                  f"(SELECT min(product_id) FROM `{raw_db}`.products) AS product "
                  f"FROM `{raw_db}`.orders").iloc[0]
    last_id, last_item, product = int(q["last_id"]), int(q["last_item"]), int(q["product"])
    newest, latest = pd.Timestamp(q["newest"]), pd.Timestamp(q["latest"])
    # An old order that is returned now, and the oldest not yet delivered one that moves on.
    returned = ctx.query(f"SELECT order_id FROM `{raw_db}`.orders WHERE status = 'delivered' "
                         "ORDER BY order_id LIMIT 1")["order_id"].tolist()
    moved = ctx.query(f"SELECT order_id, status FROM `{raw_db}`.orders "
                      "WHERE status IN ('placed', 'shipped') ORDER BY order_id LIMIT 1")
    changes = [(int(oid), "returned") for oid in returned]
    if len(moved):
        step = {"placed": "shipped", "shipped": "delivered"}[moved.iloc[0]["status"]]
        changes.append((int(moved.iloc[0]["order_id"]), step))
    customer = int(ctx.scalar(f"SELECT min(customer_id) FROM `{raw_db}`.orders"))

    def stamp(hours: int, base: pd.Timestamp = newest) -> str:
        return (base + pd.Timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")

    for number, (order_id, status) in enumerate(changes, start=1):
        ctx.client.command(f"ALTER TABLE `{raw_db}`.orders UPDATE status = '{status}', "
                           f"updated_at = toDateTime('{stamp(number)}') "
                           f"WHERE order_id = {order_id}", settings={"mutations_sync": 2})
    new_ids = [last_id + 1, last_id + 2]
    ctx.client.command(
        f"INSERT INTO `{raw_db}`.orders (order_id, customer_id, order_ts, status, updated_at) "
        # The first shares its order_date with an order that does not change: a unique_key
        # that is not unique (order_date) would delete that order's row.
        "VALUES " + ", ".join(f"({oid}, {customer}, toDateTime('{stamp(24 * i, latest)}'), "
                              f"'placed', toDateTime('{stamp(10 + i)}'))"
                              for i, oid in enumerate(new_ids)))
    ctx.client.command(
        f"INSERT INTO `{raw_db}`.order_items "
        "(order_item_id, order_id, product_id, quantity, unit_price, discount_pct) "
        f"SELECT {last_item} + n.number + 1, {last_id} + n.number + 1, p.product_id, "
        f"n.number + 1, p.price, 0 FROM `{raw_db}`.products AS p, numbers(2) AS n "
        f"WHERE p.product_id = {product}")
    return new_ids, [oid for oid, _ in changes]


def build(scratch: ScratchProject, raw_db: str, select: str, what: str) -> None:
    """One dbt run of the model (with what it needs) on the scratch raw tables; a failure
    becomes a hint, with a targeted one for a filter that runs on the first build."""
    proc = scratch.run("run", "--select", select, *raw_vars(raw_db))
    if proc.returncode == 0:
        return
    # dbt names the copy in the scratch project; the learner knows their own file.
    said = failure_lines(proc.stdout + proc.stderr).replace(MODEL_PATH,
                                                            scratch.ctx.shown_file)
    if re.search(r"UNKNOWN_TABLE|Code: 60\.", said) and MODEL in said:
        raise Fail(f"{what} failed: the model reads its own table ({{{{ this }}}}) before it "
                   "exists. On the first run there is no table yet: put the filter inside "
                   "{% if is_incremental() %} ... {% endif %}.\ndbt says:\n" + said)
    raise Fail(f"{what} failed. dbt says:\n{said}")


def failure_lines(output: str) -> str:
    """What dbt said went wrong: the block after 'Encountered an error:' (a Jinja or parse
    error names the tag and line there), else the error lines of the run."""
    if "Encountered an error:" in output:
        block = output.split("Encountered an error:", 1)[1].strip().splitlines()
        return "\n".join(line.rstrip() for line in block[:8])
    return dbt_errors(output)


def read_model(ctx: CheckContext, database: str) -> pd.DataFrame:
    table = ctx.query(f"SELECT * FROM `{database}`.{MODEL}")
    require_columns(table, [*COLUMNS, AUDIT], f"Your model {MODEL}")
    return table


def table_uuid(ctx: CheckContext, database: str) -> str:
    return str(ctx.scalar(f"SELECT toString(uuid) FROM system.tables "
                          f"WHERE database = '{database}' AND name = '{MODEL}'"))


def check_twice_seen(table: pd.DataFrame, changed: list[int]) -> None:
    """Fail when an order has more than one row, explaining which mistake that shows."""
    counts = table["order_id"].value_counts()
    twice = sorted(int(o) for o in counts[counts > 1].index)
    if not twice:
        return
    first = twice[0]
    if len(twice) > len(changed):
        raise Fail(f"After the second run order {first} (and {len(twice) - 1} more) appears "
                   f"{int(counts[first])} times: the run appended every order again. Without "
                   "a unique_key an incremental model only ever appends (TODO 1), and without "
                   "an is_incremental() filter every run reads all orders (TODO 2).")
    raise Fail(f"After the second run the changed order{'s' if len(twice) > 1 else ''} "
               f"{', '.join(map(str, twice))} appear{'' if len(twice) > 1 else 's'} twice: "
               "the new version was appended next to the old row. Set unique_key='order_id' "
               "and incremental_strategy='delete+insert', so that a changed order replaces "
               "its row ('append', or no unique_key, only ever adds rows).")


def check_order_revenue(ctx: CheckContext) -> str:
    """The learner's incremental model equals a full recomputation after new and changed
    orders, its incremental run wrote only those orders, and it kept its table."""
    ctx.require_tables(*(f"raw.{t}" for t in RAW_TABLES), lesson="02")
    ctx.learner_text()
    database = ctx.scratch
    with scratch_project(ctx) as scratch:
        try:
            scratch.place(MODEL_PATH)
            raw_db = copy_raw_tables(ctx, RAW_TABLES)
            build(scratch, raw_db, f"+{MODEL}", "The first build of your model")
            intermediate = scratch.database("intermediate")
            expected_sql = (f"SELECT {', '.join(COLUMNS)} FROM `{intermediate}`."
                            "int_orders_with_revenue")
            first = read_model(ctx, database)
            compare_frames(first, ctx.query(expected_sql), ["order_id"],
                           f"After its first run, {MODEL}")
            first_run = set(first[AUDIT])
            watermark = pd.Timestamp(first["updated_at"].max())
            uuid_before = table_uuid(ctx, database)

            new_ids, changed_ids = change_orders(ctx, raw_db)
            build(scratch, raw_db, MODEL, "The incremental run of your model")
            second = read_model(ctx, database)
            expected = ctx.query(expected_sql)
            check_twice_seen(second, changed_ids)
            judge_contents(second, expected, new_ids, changed_ids)
            judge_rewritten(second, first_run, watermark, new_ids, changed_ids)
            if table_uuid(ctx, database) != uuid_before:
                raise Fail("The result is right and the run read only the changed orders, but "
                           f"{MODEL} was rebuilt: a new table was swapped in with every row "
                           "copied. That is dbt-clickhouse's default (legacy) strategy; set "
                           "incremental_strategy='delete+insert' to delete and insert only "
                           "the changed rows in place.")
        finally:
            ctx.drop_database(f"{ctx.scratch}_raw")
    return (f"{MODEL} equals a full recomputation after {len(new_ids)} new and "
            f"{len(changed_ids)} changed orders, and the incremental run wrote only those "
            f"{len(new_ids) + len(changed_ids)} rows into the same table (delete+insert on "
            "order_id).")


def judge_contents(table: pd.DataFrame, expected: pd.DataFrame, new_ids: list[int],
                   changed_ids: list[int]) -> None:
    """Fail on the first difference from the full recomputation, naming the likely cause."""
    have = set(table["order_id"].astype(int))
    missing_new = [o for o in new_ids if o not in have]
    if missing_new:
        raise Fail(f"The new order{'s' if len(missing_new) > 1 else ''} "
                   f"{', '.join(map(str, missing_new))} did not arrive: the incremental run "
                   "should keep the orders whose updated_at is greater than the newest "
                   "updated_at already in the table (select max(updated_at) from {{ this }}).")
    lost = sorted(set(expected["order_id"].astype(int)) - have)
    if lost:
        raise Fail(f"Order{'s' if len(lost) > 1 else ''} {', '.join(map(str, lost[:5]))} "
                   "vanished in the incremental run, though unchanged. delete+insert deletes "
                   "every row whose unique_key value comes again, so the unique_key must "
                   "identify one order: unique_key='order_id'.")
    merged = expected.merge(table, on="order_id", suffixes=("", "_yours"))
    for order_id in changed_ids:
        row = merged[merged["order_id"] == order_id]
        if len(row) and row.iloc[0]["status"] != row.iloc[0]["status_yours"]:
            raise Fail(f"Order {order_id} changed to {row.iloc[0]['status']!r} (updated_at "
                       f"{row.iloc[0]['updated_at']}), but your table still says "
                       f"{row.iloc[0]['status_yours']!r}. An old order that changes keeps its "
                       "order_ts and order_date: the filter must compare updated_at, the time "
                       "of the last change.")
    compare_frames(table, expected, ["order_id"], f"After the incremental run, {MODEL}")


def judge_rewritten(table: pd.DataFrame, first_run: set[str], watermark: pd.Timestamp,
                    new_ids: list[int], changed_ids: list[int]) -> None:
    """Fail when the incremental run wrote rows of orders that did not change.

    Rows whose updated_at equals the old watermark may come again (a `>=` filter takes them
    once more, a defensible choice against late rows with the same stamp)."""
    rewritten = table[~table[AUDIT].isin(first_run)]
    touched = set(rewritten["order_id"].astype(int))
    needed = set(new_ids) | set(changed_ids)
    at_mark = set(table.loc[pd.to_datetime(table["updated_at"]) == watermark,
                            "order_id"].astype(int))
    needless = sorted(touched - needed - at_mark)
    if not needless:
        return
    if len(touched) == len(table):
        raise Fail(f"The result is right, but the incremental run rewrote all {len(table)} "
                   f"rows; only the {len(needed)} new or changed orders should be processed. "
                   "Add the filter (TODO 2): {% if is_incremental() %} where updated_at > "
                   "(select max(...) from {{ this }}) {% endif %}.")
    raise Fail(f"The result is right, but the incremental run also rewrote orders that did "
               f"not change ({', '.join(map(str, needless[:5]))}): the filter should keep "
               "only the orders whose updated_at is newer than the newest one in the table.")


EXERCISES = (
    Exercise("08_order_revenue", "An incremental model that processes only what changed",
             "dbt model", "08_order_revenue.sql", check_order_revenue),
)
