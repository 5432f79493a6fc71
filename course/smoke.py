"""The smoke job: prove the stack end to end with an ordinary client, in a few seconds."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from .clients import clickhouse as client
from .settings import Settings


def run_smoke(settings: Settings, rows: int = 100_000) -> int:
    """Create a table, insert `rows` rows, aggregate them and check the totals; 0 on success."""
    ch = client(settings)
    started = time.perf_counter()
    ch.command("CREATE DATABASE IF NOT EXISTS course_smoke")
    ch.command("DROP TABLE IF EXISTS course_smoke.orders")
    ch.command("""
        CREATE TABLE course_smoke.orders (
            order_id UInt64, day Date, country LowCardinality(String), amount Decimal(12, 2)
        ) ENGINE = MergeTree PARTITION BY toYYYYMM(day) ORDER BY (day, order_id)""")
    countries = ["DE", "FR", "US", "JP"]
    first_day = dt.date(2024, 1, 1)
    data = [[i, first_day + dt.timedelta(days=i % 31), countries[i % 4], Decimal(i % 100) + 1]
            for i in range(rows)]
    ch.insert("course_smoke.orders", data, column_names=["order_id", "day", "country", "amount"],
              column_type_names=["UInt64", "Date", "LowCardinality(String)", "Decimal(12, 2)"])
    result = ch.query("""
        SELECT country, count() AS orders, sum(amount) AS revenue
        FROM course_smoke.orders GROUP BY country ORDER BY country""")
    total = sum(r[1] for r in result.result_rows)
    print(f"{'country':<8}{'orders':>10}{'revenue':>16}")
    for country, n, revenue in result.result_rows:
        print(f"{country:<8}{n:>10}{revenue:>16}")
    elapsed = time.perf_counter() - started
    if total != rows:
        print(f"smoke job FAILED: wrote {rows} rows, read back {total}")
        return 1
    print(f"smoke job passed: {rows:,} rows written and read back in {elapsed:.2f} s")
    return 0
