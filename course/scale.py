"""A big data set for lesson 09: generated once, loaded into its own database `scale`, and
measured query by query (rows read, time, which indexes did the work).

The sample data in `raw.*` stays as it is (the other lessons check their results against
it); the big set lives in `scale.orders` and `scale.order_items`, with the same columns,
engines and keys as their `raw` twins. From a notebook::

    from course import scale
    scale.ensure_scale_data(orders=1_000_000)       # generate (cached) and load, or skip
    m = scale.measure(ch, "SELECT ... FROM scale.orders WHERE ...")
    m.rows_read, m.seconds, m.result
    scale.index_usage(ch, "SELECT ...")             # EXPLAIN indexes = 1 as a table

Rows read are what ClickHouse reports for the query (the `statistics` of a JSON result, the
same figure as `read_rows` in the X-ClickHouse-Summary header of the real server). They
depend only on the data and the table layout, so they are the same on every run; times are
not.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from clickhouse_connect.driver.client import Client

from . import clients
from .datagen import generate
from .loaders.clickhouse import Staging, run_init_sql, stage_csv
from .loaders.schema import ORDER_ITEMS, ORDERS, RAW_DB, DataFile
from .settings import Settings, load_settings

SCALE_DB = "scale"
# The tables of the raw layer, copied with their definitions (engine, keys, partitions) into
# the `scale` database: the lesson measures the layout the course really uses.
TABLES: dict[str, DataFile] = {"orders": ORDERS, "order_items": ORDER_ITEMS}
ROWS_FILE = "rows.json"  # written last: its presence means the generated set is complete
WAIT = {"mutations_sync": 2}  # an ALTER returns once its mutation is done
# ClickHouse remembers which granules matched a filter before (the query condition cache) and
# skips the others next time: measurements switch it off to see what the indexes alone do.
NO_CONDITION_CACHE = {"use_query_condition_cache": 0}


def dataset_dir(orders: int, seed: int = 0, settings: Settings | None = None) -> Path:
    """Where the generated set is cached: `<COURSE_HOME>/scale/<orders>-<seed>/`."""
    settings = settings or load_settings()
    return settings.home / "scale" / f"{orders}-{seed}"


def ensure_dataset(orders: int, seed: int = 0,
                   settings: Settings | None = None) -> tuple[Path, dict[str, int]]:
    """Generate the set with `orders` orders unless it is cached; returns its folder and the
    rows per file."""
    folder = dataset_dir(orders, seed, settings)
    marker = folder / ROWS_FILE
    if marker.exists():
        return folder, json.loads(marker.read_text())
    started = time.perf_counter()
    rows = generate(folder, orders, seed)
    marker.write_text(json.dumps(rows, indent=1))
    print(f"generated {sum(rows.values()):,} rows in {time.perf_counter() - started:.1f} s "
          f"into {folder}")
    return folder, rows


def dataset_tag(orders: int, seed: int) -> str:
    """The comment a loaded table carries: which generated set it holds."""
    return f"generated data set: {orders} orders, seed {seed}"


def ensure_scale_data(orders: int = 1_000_000, seed: int = 0, client: Client | None = None,
                      settings: Settings | None = None) -> dict[str, int]:
    """`scale.orders` and `scale.order_items` holding the generated set, plain and compact.

    Idempotent: the set is generated only when it is not cached, and loaded only when the
    tables do not hold it already (their comment names the set and their row counts match).
    A load goes through staging tables swapped in at the end, so a reader never sees half a
    table. Every partition is merged into one part (OPTIMIZE ... FINAL), so the rows a query
    reads are the same on every run. Projections and extra tables an earlier run of the
    lesson added are removed: the lesson starts from the plain tables each time.
    Returns the row count of each table.
    """
    settings = settings or load_settings()
    client = client or clients.clickhouse(settings)
    folder, rows = ensure_dataset(orders, seed, settings)
    run_init_sql(client)  # the raw tables' definitions (idempotent), to copy below
    client.command(f"CREATE DATABASE IF NOT EXISTS {SCALE_DB}")
    for table in TABLES:
        client.command(f"CREATE TABLE IF NOT EXISTS {SCALE_DB}.{table} AS {RAW_DB}.{table}")
    remove_extras(client)
    tag = dataset_tag(orders, seed)
    loaded = client.query_df(
        "SELECT name, total_rows, comment FROM system.tables "
        f"WHERE database = '{SCALE_DB}' AND name IN ({', '.join(repr(t) for t in TABLES)})")
    current = {r.name: (int(r.total_rows or 0), r.comment) for r in loaded.itertuples()}
    wanted = {table: rows[spec.path] for table, spec in TABLES.items()}
    if all(current.get(t) == (n, tag) for t, n in wanted.items()):
        return wanted
    started = time.perf_counter()
    with Staging(client, SCALE_DB) as staging:
        for table, spec in TABLES.items():
            stage_csv(client, staging, folder / spec.path, spec, table)
            # One part per partition: a fixed layout, so rows read do not vary run to run.
            client.command(f"OPTIMIZE TABLE {staging.staged(table)} FINAL")
        staging.publish()
    for table in TABLES:
        client.command(f"ALTER TABLE {SCALE_DB}.{table} MODIFY COMMENT '{tag}'")
    print(f"loaded {sum(wanted.values()):,} rows into {SCALE_DB}.* in "
          f"{time.perf_counter() - started:.1f} s")
    return wanted


def remove_extras(client: Client) -> None:
    """Drop what a lesson added to `scale`: projections of its tables, and any other table,
    view or materialized view (views first, so none is left writing into a dropped table)."""
    projections = client.query_df(
        f"SELECT table, name FROM system.projections WHERE database = '{SCALE_DB}'")
    for row in projections.itertuples():
        client.command(f"ALTER TABLE {SCALE_DB}.`{row.table}` DROP PROJECTION IF EXISTS "
                       f"`{row.name}`", settings=WAIT)
    others = client.query_df(
        f"SELECT name, engine FROM system.tables WHERE database = '{SCALE_DB}' "
        f"AND name NOT IN ({', '.join(repr(t) for t in TABLES)}) ORDER BY engine NOT LIKE '%View'")
    for row in others.itertuples():
        client.command(f"DROP TABLE IF EXISTS {SCALE_DB}.`{row.name}` SYNC")


@dataclass
class Measurement:
    """One query, measured: its result, the rows and bytes it read, its best time."""

    sql: str
    result: pd.DataFrame
    rows_read: int
    bytes_read: int
    seconds: float


def measure(client: Client, sql: str, repeats: int = 3,
            settings: dict[str, object] | None = None) -> Measurement:
    """Run `sql` `repeats` times; the fastest wall time counts (the others warmed the caches).

    The rows and bytes read come from one more run with a JSON result, whose `statistics`
    hold them: that works the same against the embedded server and the real one. The query
    condition cache is off, so every run reads what the indexes select.
    """
    settings = {**NO_CONDITION_CACHE, **(settings or {})}
    best, result = float("inf"), pd.DataFrame()
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        result = client.query_df(sql, settings=settings)
        best = min(best, time.perf_counter() - started)
    stats = json.loads(client.raw_query(sql, settings=settings, fmt="JSON")).get("statistics", {})
    return Measurement(sql, result, int(stats.get("rows_read", 0)),
                       int(stats.get("bytes_read", 0)), best)


def rows_read(client: Client, sql: str, settings: dict[str, object] | None = None) -> int:
    """The rows ClickHouse reads to answer `sql` (one run)."""
    return measure(client, sql, repeats=1, settings=settings).rows_read


READ_LINE = re.compile(r"ReadFromMergeTree \(([^)]*)\)")
INDEX_LINE = re.compile(r"^\s*(Min-Max|MinMax|Partition|PrimaryKey|Skip|Projection)\s*$")
COUNT_LINE = re.compile(r"^\s*(Parts|Granules): (\d+)/(\d+)")


def index_usage(client: Client, sql: str,
                settings: dict[str, object] | None = None) -> pd.DataFrame:
    """`EXPLAIN indexes = 1` as a table: per index, what it reads (the table, or the
    projection ClickHouse chose), its keys, and the parts and granules it kept.

    Read top to bottom: each index (the min-max index of the partition column, the partition
    key, the primary key) starts from what the one before kept.
    """
    plan = client.query_df(f"EXPLAIN indexes = 1 {sql}",
                           settings={**NO_CONDITION_CACHE, **(settings or {})})["explain"]
    rows: list[dict[str, object]] = []
    current: dict[str, object] | None = None
    in_keys, source = False, ""
    for line in plan:
        text = line.strip()
        if match := READ_LINE.search(line):
            source = match.group(1)
        elif match := INDEX_LINE.match(line):
            current = {"reads": source, "index": match.group(1), "keys": "", "parts": "",
                       "granules": ""}
            rows.append(current)
            in_keys = False
        elif current is None:
            continue
        elif text == "Keys:":
            in_keys = True
        elif match := COUNT_LINE.match(line):
            current[match.group(1).lower()] = f"{match.group(2)}/{match.group(3)}"
            in_keys = False
        elif ":" in text:
            in_keys = False
        elif in_keys:
            current["keys"] = ", ".join(k for k in (current["keys"], text) if k)
    return pd.DataFrame(rows, columns=["reads", "index", "keys", "parts", "granules"])
