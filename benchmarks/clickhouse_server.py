"""Benchmark the embedded ClickHouse server (HTTP) against chDB in-process, in one run.

The same work runs twice: through a private server started with `course up clickhouse`
(clickhouse-connect over HTTP, default client settings) and through `chdb.connect()` on a
separate temporary data folder inside this process. The table shows both times, the ratio
server / in-process, the target and PASS/MISS. Misses are reported, not failures: the exit
code is 0 unless the benchmark itself breaks.

Timing: every measurement is warmed up once, then the BEST (minimum) of `--repeat` runs is
kept, which filters out scheduler noise on small machines. Short operations are timed in
batches (one GROUP BY run is 10 queries, one SELECT 1 run is 200) and shown per query.
Untimed setup (TRUNCATE before an insert) happens outside the timed region.

    .venv/bin/python benchmarks/clickhouse_server.py [--rows N] [--stream-rows N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import chdb
import clickhouse_connect
import numpy as np
import pandas as pd
import psutil

from course.stack.scratch import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COURSE = [sys.executable, "-m", "course.cli"]
MB = 1024 * 1024

TABLE = "bench_orders"
DDL = (
    f"CREATE TABLE {TABLE} (id UInt64, user_id UInt32, amount Float64, day Date, "
    "country LowCardinality(String)) ENGINE = MergeTree ORDER BY id"
)
GROUP_BY_SQL = (
    f"SELECT country, day, count() AS orders, sum(amount) AS revenue, "
    f"avg(amount) AS avg_amount FROM {TABLE} GROUP BY country, day "
    "ORDER BY country, day"
)
READ_SQL = f"SELECT id, user_id, amount, day, country FROM {TABLE}"
TINY_SQL = "SELECT 1"
TINY_QUERIES = 200
GROUP_BY_BATCH = 10
COUNTRIES = np.array(["DE", "FR", "US", "JP", "BR", "IN", "GB", "IT"])

LEGEND = """\
server:     clickhouse-connect over HTTP, default settings: insert_df, query, query_df
in-process: chdb.connect(): INSERT .. SELECT * FROM Python(df), query(sql, "DataFrame")
SELECT 1:   server client.query(); in-process conn.query() (CSV, chDB's default)
stream:     query_row_block_stream; server RSS sampled every 50 ms, peak over all streams"""

RATIO_TARGET = 1.3
OVERHEAD_TARGET_MS = 2.0
RSS_TARGET_MB = 300.0
RSS_INTERVAL_S = 0.05


# -- data and backends ------------------------------------------------------------------------


def make_frame(rows: int, seed: int = 42) -> pd.DataFrame:
    """A deterministic orders DataFrame with the table's five columns."""
    rng = np.random.default_rng(seed)
    days = np.datetime64("2024-01-01") + rng.integers(0, 365, rows)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.uint64),
            "user_id": rng.integers(0, 100_000, rows, dtype=np.uint32),
            "amount": np.round(rng.random(rows) * 100, 2),
            "day": days.astype("datetime64[s]"),
            "country": pd.Series(COUNTRIES[rng.integers(0, len(COUNTRIES), rows)]),
        }
    )


class Backend(Protocol):
    """One way of reaching ClickHouse: the same operations for both sides."""

    label: str

    def execute(self, sql: str) -> None:
        """Run a statement and ignore its result."""

    def insert(self, df: pd.DataFrame) -> None:
        """Append `df` to the benchmark table."""

    def group_by(self) -> pd.DataFrame:
        """Run the GROUP BY and return its rows as a DataFrame."""

    def read_df(self) -> pd.DataFrame:
        """Read the whole table into a DataFrame."""

    def tiny(self) -> Any:
        """Run `SELECT 1` and return its result."""

    def scalar(self, sql: str) -> int:
        """Run a one-value query and return it as int."""


class ServerBackend:
    """The embedded server over HTTP, through clickhouse-connect with default settings."""

    label = "server"

    def __init__(self, client: Any) -> None:
        self.client = client

    def execute(self, sql: str) -> None:
        self.client.command(sql)

    def insert(self, df: pd.DataFrame) -> None:
        # Native format, lz4-compressed body (clickhouse-connect's default for inserts).
        self.client.insert_df(TABLE, df)

    def group_by(self) -> pd.DataFrame:
        result = self.client.query(GROUP_BY_SQL)
        return pd.DataFrame(result.result_rows, columns=list(result.column_names))

    def read_df(self) -> pd.DataFrame:
        return self.client.query_df(READ_SQL)

    def tiny(self) -> Any:
        return self.client.query(TINY_SQL).result_rows

    def scalar(self, sql: str) -> int:
        return int(self.client.command(sql))


class InProcessBackend:
    """chDB in this process on its own data folder: no HTTP, no serialization to a client."""

    label = "in-process"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str) -> None:
        self.conn.query(sql)

    def insert(self, df: pd.DataFrame) -> None:
        # The in-process equivalent of insert_df: chDB reads the DataFrame's columns directly
        # through its Python() table function (no Native encoding, no compression, no copy
        # through a socket). It is chDB's fastest documented way to load a DataFrame.
        # Python(df) finds the DataFrame by its variable name in the calling frame.
        self.conn.query(f"INSERT INTO {TABLE} SELECT * FROM Python(df)")

    def group_by(self) -> pd.DataFrame:
        return self.conn.query(GROUP_BY_SQL, "DataFrame")

    def read_df(self) -> pd.DataFrame:
        return self.conn.query(READ_SQL, "DataFrame")

    def tiny(self) -> Any:
        # chDB's default output format (CSV): the lightest complete answer in-process.
        return self.conn.query(TINY_SQL)

    def scalar(self, sql: str) -> int:
        return int(self.conn.query(sql, "TSV").bytes().decode().strip())


# -- timing -----------------------------------------------------------------------------------


def best_of(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> float:
    """Warm up once, then return the best (minimum) of `repeat` timed runs, in seconds.

    `setup` runs before every run (warm-up included) and is not timed.
    """
    times = []
    for i in range(repeat + 1):
        if setup is not None:
            setup()
        started = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - started
        if i > 0:
            times.append(elapsed)
    return min(times)


@dataclass
class Row:
    """One line of the result table."""

    name: str
    server: str
    inproc: str
    ratio: str
    target: str
    passed: bool | None = None


def ratio_row(name: str, server_s: float, inproc_s: float) -> Row:
    """A row comparing two durations against the ratio target."""
    ratio = server_s / inproc_s
    return Row(
        name,
        f"{server_s * 1000:,.1f} ms",
        f"{inproc_s * 1000:,.1f} ms",
        f"{ratio:.2f}x",
        f"<= {RATIO_TARGET}x",
        ratio <= RATIO_TARGET,
    )


# -- the measurements -------------------------------------------------------------------------


def bench_insert(backends: list[Backend], df: pd.DataFrame, repeat: int) -> Row:
    """Bulk insert `df` into an empty MergeTree table; the table keeps the last load."""
    times = {}
    for b in backends:
        b.execute(f"DROP TABLE IF EXISTS {TABLE}")
        b.execute(DDL)
        times[b.label] = best_of(
            lambda b=b: b.insert(df), repeat, setup=lambda b=b: b.execute(f"TRUNCATE TABLE {TABLE}")
        )
        count = b.scalar(f"SELECT count() FROM {TABLE}")
        if count != len(df):
            raise RuntimeError(f"{b.label}: inserted {len(df)} rows, table holds {count}")
        # One part on both sides, so the reads below compare like with like.
        b.execute(f"OPTIMIZE TABLE {TABLE} FINAL")
    return ratio_row(f"bulk insert {len(df):,} rows", times["server"], times["in-process"])


def bench_insert_native(client: Any, conn: Any, rows: int, repeat: int) -> Row:
    """The server's own share of a bulk insert: the same Native bytes on both sides.

    insert_df's time is mostly clickhouse-connect turning the DataFrame into Native on the
    client; here the body is encoded once, then POSTed to the server (raw_insert) or handed to
    chDB's streaming insert in-process, so only the ingest path is compared.
    """
    body = bytes(conn.query(f"SELECT * FROM {TABLE}", "Native").bytes())
    copy = f"{TABLE}_native"

    def setup() -> None:
        conn.query(f"DROP TABLE IF EXISTS {copy}")
        conn.query(f"CREATE TABLE {copy} AS {TABLE}")
        client.command(f"DROP TABLE IF EXISTS {copy}")
        client.command(f"CREATE TABLE {copy} AS {TABLE}")

    def in_process() -> None:
        inserter = conn.send_insert(f"INSERT INTO {copy}", "Native")
        inserter.append(body)
        inserter.finish()

    setup()
    server_s = best_of(lambda: client.raw_insert(copy, insert_block=body, fmt="Native"), repeat,
                       setup=lambda: client.command(f"TRUNCATE TABLE {copy}"))
    inproc_s = best_of(in_process, repeat, setup=lambda: conn.query(f"TRUNCATE TABLE {copy}"))
    for count in (client.command(f"SELECT count() FROM {copy}"),
                  conn.query(f"SELECT count() FROM {copy}", "TSV").bytes().decode().strip()):
        if int(count) != rows:
            raise RuntimeError(f"Native insert: expected {rows} rows, table holds {count}")
    return ratio_row(f"  same Native body, server work only ({len(body) / 2**20:.0f} MB)",
                     server_s, inproc_s)


def bench_group_by(backends: list[Backend], repeat: int) -> Row:
    """GROUP BY country, day with count/sum/avg; both sides must give the same answer.

    One run is GROUP_BY_BATCH queries in a row (a single ~25 ms query is too easily skewed
    by the scheduler); the row shows the time per query.
    """
    times, results = {}, {}
    for b in backends:

        def batch(b: Backend = b) -> None:
            for _ in range(GROUP_BY_BATCH):
                b.group_by()

        times[b.label] = best_of(batch, repeat) / GROUP_BY_BATCH
        results[b.label] = b.group_by()
    check_same(results["server"], results["in-process"], "GROUP BY")
    return ratio_row("GROUP BY country, day (per query)", times["server"], times["in-process"])


def bench_read(backends: list[Backend], rows: int, repeat: int) -> Row:
    """Read the whole table into a pandas DataFrame."""
    times = {}
    for b in backends:
        times[b.label] = best_of(b.read_df, repeat)
        shape = b.read_df().shape
        if shape != (rows, 5):
            raise RuntimeError(f"{b.label}: read a DataFrame of shape {shape}, not {(rows, 5)}")
    return ratio_row(f"read {rows:,} rows to DataFrame", times["server"], times["in-process"])


def bench_tiny(backends: list[Backend], repeat: int) -> list[Row]:
    """TINY_QUERIES sequential `SELECT 1`; per-query time and the server's overhead."""
    per_query = {}
    for b in backends:

        def loop(b: Backend = b) -> None:
            for _ in range(TINY_QUERIES):
                b.tiny()

        per_query[b.label] = best_of(loop, repeat) / TINY_QUERIES
    s, p = per_query["server"], per_query["in-process"]
    overhead_ms = (s - p) * 1000
    return [
        Row(
            f"{TINY_QUERIES} x SELECT 1, per query",
            f"{s * 1000:.2f} ms",
            f"{p * 1000:.2f} ms",
            f"{s / p:.2f}x",
            "(info)",
        ),
        Row(
            "  overhead per query (server - in-proc)",
            f"{overhead_ms:.2f} ms",
            "",
            "",
            f"<= {OVERHEAD_TARGET_MS:g} ms",
            overhead_ms <= OVERHEAD_TARGET_MS,
        ),
    ]


def check_same(a: pd.DataFrame, b: pd.DataFrame, what: str) -> None:
    """Raise unless two small results hold the same values (types may differ)."""
    left = a.astype({"day": "datetime64[s]"}).reset_index(drop=True)
    right = b.astype({"day": "datetime64[s]"}).reset_index(drop=True)
    if list(left.columns) != list(right.columns) or len(left) != len(right):
        raise RuntimeError(f"{what}: server and in-process results differ in shape")
    for col in left.columns:
        lv, rv = left[col].to_numpy(), right[col].to_numpy()
        same = (
            np.allclose(lv.astype(float), rv.astype(float))
            if lv.dtype.kind in "fiu"
            else bool((lv == rv).all())
        )
        if not same:
            raise RuntimeError(f"{what}: server and in-process differ in column {col}")


# -- server RSS while streaming ---------------------------------------------------------------


class RssSampler:
    """Samples a process's RSS every RSS_INTERVAL_S from a thread and keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def rss(self) -> int:
        """The current RSS in bytes."""
        return self.proc.memory_info().rss

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self.samples += 1
            self._stop.wait(RSS_INTERVAL_S)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def stream_rows(client: Any, rows: int) -> int:
    """Stream `SELECT number, toString(number)` through query_row_block_stream; count rows."""
    seen = 0
    sql = f"SELECT number, toString(number) FROM numbers({rows})"
    with client.query_row_block_stream(sql) as stream:
        for block in stream:
            seen += len(block)
    if seen != rows:
        raise RuntimeError(f"streamed {seen} rows, expected {rows}")
    return seen


def bench_stream_rss(client: Any, pid: int, rows: int, repeat: int) -> list[Row]:
    """Server RSS while a client streams `rows` rows: warm-up plus `repeat` streams.

    The baseline is taken once before the first (warm-up) stream and the peak over all
    streams, so memory the server keeps after a stream also counts as growth.
    """
    proc = psutil.Process(pid)
    baseline = proc.memory_info().rss
    peak, times, samples = baseline, [], 0
    for i in range(repeat + 1):
        with RssSampler(pid) as sampler:
            started = time.perf_counter()
            stream_rows(client, rows)
            elapsed = time.perf_counter() - started
        peak, samples = max(peak, sampler.peak), samples + sampler.samples
        if i > 0:
            times.append(elapsed)
    after = proc.memory_info().rss
    growth_mb = (peak - baseline) / MB
    return [
        Row(f"stream {rows:,} rows (row blocks), time", f"{min(times):.2f} s", "", "", "(info)"),
        Row(
            "  server RSS baseline / peak / after",
            f"{baseline / MB:.0f} / {peak / MB:.0f} / {after / MB:.0f} MB",
            "",
            "",
            f"({samples} samples)",
        ),
        Row(
            "  server RSS growth while streaming",
            f"{growth_mb:.1f} MB",
            "",
            "",
            f"< {RSS_TARGET_MB:g} MB",
            growth_mb < RSS_TARGET_MB,
        ),
    ]


# -- the private server -----------------------------------------------------------------------




def course(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run the `course` CLI with `env` from the project root; output is captured."""
    return subprocess.run(
        [*COURSE, *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Server:
    """A running private server: its settings and its pid."""

    env: dict[str, str]
    pid: int

    @property
    def port(self) -> int:
        return int(self.env["CLICKHOUSE_PORT"])

    def client(self) -> Any:
        """A clickhouse-connect client with default settings."""
        return clickhouse_connect.get_client(
            host=self.env["CLICKHOUSE_HOST"],
            port=self.port,
            username=self.env["CLICKHOUSE_USER"],
            password=self.env["CLICKHOUSE_PASSWORD"],
        )


def server_pid(env: dict[str, str], home: Path) -> int:
    """The server's pid from `course status --json`, else from its pid file."""
    status = course(env, "status", "clickhouse", "--json")
    try:
        services = json.loads(status.stdout)["services"]
        pid = next(s["pid"] for s in services if s["name"] == "clickhouse")
    except (ValueError, KeyError, StopIteration):
        pid = None
    if pid is None:
        pid_file = home / "run" / "clickhouse.pid"
        if not pid_file.exists():
            raise RuntimeError(
                f"no server pid: `course status --json` said:\n{status.stdout}{status.stderr}"
            )
        pid = pid_file.read_text().strip()
    return int(pid)


@contextmanager
def private_server(home: Path) -> Iterator[Server]:
    """`course up clickhouse` on a free port and `home`; `course down` on the way out."""
    env = {
        **os.environ,
        "COURSE_HOME": str(home),
        "COURSE_MODE": "embedded",
        "CLICKHOUSE_HOST": "127.0.0.1",
        "CLICKHOUSE_PORT": str(free_port()),
        "CLICKHOUSE_USER": "default",
        "CLICKHOUSE_PASSWORD": secrets.token_hex(8),
    }
    try:
        up = course(env, "up", "clickhouse")
        if up.returncode != 0:
            raise RuntimeError(f"course up failed ({up.returncode}):\n{up.stdout}{up.stderr}")
        yield Server(env, server_pid(env, home))
    finally:
        down = course(env, "down", "clickhouse")
        print(f"[{down.stdout.strip() or down.stderr.strip()}]")


# -- report -----------------------------------------------------------------------------------


def header(args: argparse.Namespace) -> str:
    """Machine and run description."""
    cpu = platform.processor() or platform.machine()
    return "\n".join(
        [
            "Embedded ClickHouse server (HTTP) vs chDB in-process",
            f"machine: {os.cpu_count()} CPUs ({cpu}), "
            f"{psutil.virtual_memory().total / 1024**3:.1f} GB RAM, {platform.system()} "
            f"{platform.release()}",
            f"python {platform.python_version()}, chDB {chdb.__version__} "
            f"(ClickHouse {getattr(chdb, 'engine_version', '?')}), "
            f"clickhouse-connect {clickhouse_connect.__version__}, pandas {pd.__version__}",
            f"rows {args.rows:,}, stream rows {args.stream_rows:,}; warm-up + best of "
            f"{args.repeat} runs (GROUP BY run: {GROUP_BY_BATCH} queries, SELECT 1 run: "
            f"{TINY_QUERIES})",
            f"load average at start: {load_average()} (other work on this machine skews figures)",
        ]
    )


def load_average() -> str:
    """The 1/5/15-minute load averages, or '?' where the OS has none."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    head = ("measurement", "server", "in-process", "ratio", "target", "result")
    lines = [
        (
            r.name,
            r.server,
            r.inproc,
            r.ratio,
            r.target,
            "" if r.passed is None else ("PASS" if r.passed else "MISS"),
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * len(fmt(head))
    return "\n".join([rule, fmt(head), rule, *map(fmt, lines), rule])


# -- main -------------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Start the server, measure everything on both sides, return the table rows."""
    df = make_frame(args.rows)
    conn = chdb.connect(str(workdir / "inproc"))
    try:
        with private_server(workdir / "home") as server:
            client = server.client()
            print(
                f"[server pid {server.pid} on port {server.port}; in-process data in "
                f"{workdir / 'inproc'}]",
                flush=True,
            )
            backends: list[Backend] = [ServerBackend(client), InProcessBackend(conn)]
            rows = [bench_insert(backends, df, args.repeat)]
            rows.append(bench_insert_native(client, conn, args.rows, args.repeat))
            rows.append(bench_group_by(backends, args.repeat))
            rows.append(bench_read(backends, args.rows, args.repeat))
            rows.extend(bench_tiny(backends, args.repeat))
            rows.extend(bench_stream_rss(client, server.pid, args.stream_rows, args.repeat))
            client.close()
            return rows
    finally:
        conn.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to insert and read")
    parser.add_argument(
        "--stream-rows",
        type=int,
        default=10_000_000,
        help="rows to stream for the server RSS measurement",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after a warm-up")
    args = parser.parse_args(argv)
    if min(args.rows, args.stream_rows, args.repeat) < 1:
        parser.error("--rows, --stream-rows and --repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (targets missed or not), 1 when it broke."""
    args = parse_args(argv)
    print(header(args), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="course-bench-"))
    try:
        rows = run(args, workdir)
    except Exception:
        traceback.print_exc()
        print("benchmark FAILED", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(rows))
    print(LEGEND)
    print(f"load average at end: {load_average()}")
    misses = [r.name.strip() for r in rows if r.passed is False]
    print(f"{len(misses)} target(s) missed" + (": " + "; ".join(misses) if misses else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
