"""Many clients at once, crashes and clean shutdowns, and memory while streaming big results."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from course.settings import load_settings
from course.stack.scratch import free_port

from conftest import course, make_client, stack_env

THREADS = 8
INSERTS_PER_THREAD = 50
ROWS_PER_INSERT = 10_000


def server_pid(env: dict[str, str]) -> int:
    """The embedded ClickHouse server's pid, as `course status --json` reports it."""
    status = json.loads(course(env, "status", "--json").stdout)
    (svc,) = [s for s in status["services"] if s["name"] == "clickhouse"]
    assert svc["running"] is True and svc["pid"]
    return int(svc["pid"])


def run_threads(target, count: int) -> list[BaseException]:
    """Run `target(i)` in `count` threads at once; returns the exceptions they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def wrapped(i: int) -> None:
        try:
            barrier.wait(30)
            target(i)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    return errors


@pytest.fixture
def db(ch_client) -> Iterator[str]:
    name = f"conc_{uuid.uuid4().hex[:12]}"
    ch_client.command(f"CREATE DATABASE {name}")
    yield name
    ch_client.command(f"DROP DATABASE IF EXISTS {name}")


# -- concurrency -------------------------------------------------------------------------------


def test_parallel_inserts_into_one_table(clickhouse_settings, ch_client, db):
    """8 clients inserting 50 x 10,000 rows each at once: no row lost or doubled."""
    table = f"{db}.events"
    ch_client.command(f"CREATE TABLE {table} (id UInt64, thread UInt8, v Float64) "
                      "ENGINE = MergeTree ORDER BY id")

    def insert(t: int) -> None:
        client = make_client(clickhouse_settings)
        try:
            for k in range(INSERTS_PER_THREAD):
                start = (t * INSERTS_PER_THREAD + k) * ROWS_PER_INSERT
                ids = np.arange(start, start + ROWS_PER_INSERT, dtype=np.uint64)
                summary = client.insert(
                    table, [ids, np.full(ROWS_PER_INSERT, t, dtype=np.uint8), ids * 0.5],
                    column_names=["id", "thread", "v"], column_oriented=True)
                assert summary.written_rows == ROWS_PER_INSERT
        finally:
            client.close()

    errors = run_threads(insert, THREADS)
    assert not errors, errors
    n = THREADS * INSERTS_PER_THREAD * ROWS_PER_INSERT
    count, id_sum, distinct, v_sum = ch_client.query(
        f"SELECT count(), sum(id), uniqExact(id), sum(v) FROM {table}").result_rows[0]
    assert (count, distinct) == (n, n)
    assert id_sum == n * (n - 1) // 2
    assert v_sum == pytest.approx(n * (n - 1) / 4)
    per_thread = dict(ch_client.query(
        f"SELECT thread, count() FROM {table} GROUP BY thread").result_rows)
    assert per_thread == dict.fromkeys(range(THREADS), INSERTS_PER_THREAD * ROWS_PER_INSERT)


MODELS = 4
BUILDS = 3


def _model_rows(model: int, build: int) -> int:
    return 20_000 * (model + 1) + 1_000 * build


def test_dbt_like_concurrent_builds_and_reads(clickhouse_settings, ch_client, db):
    """Models rebuilt as dbt does (CTAS to a temp name, EXCHANGE, DROP) while others read.

    Readers must only ever see complete tables: the count is one of the built sizes and
    the checksum matches that count.
    """
    done = threading.Event()
    seen: list[tuple[int, int]] = []
    valid = {m: {_model_rows(m, b) for b in range(BUILDS)} for m in range(MODELS)}

    def build(m: int) -> None:
        client = make_client(clickhouse_settings)
        try:
            for b in range(BUILDS):
                tmp, final = f"{db}.model_{m}__dbt_tmp", f"{db}.model_{m}"
                client.command(
                    f"CREATE TABLE {tmp} ENGINE = MergeTree ORDER BY n AS "
                    f"SELECT number AS n, number * {m + 1} AS v "
                    f"FROM numbers({_model_rows(m, b)})")
                if client.command(f"EXISTS TABLE {final}"):
                    client.command(f"EXCHANGE TABLES {tmp} AND {final}")
                    client.command(f"DROP TABLE {tmp}")
                else:
                    client.command(f"RENAME TABLE {tmp} TO {final}")
                client.command(f"INSERT INTO {db}.runs VALUES ({m}, {b})")
        finally:
            client.close()

    def read(r: int) -> None:
        client = make_client(clickhouse_settings)
        try:
            while True:
                finished = done.is_set()  # one last pass after the builds, so all are seen
                names = client.query(
                    "SELECT name FROM system.tables WHERE database = {d:String} "
                    "AND name LIKE 'model\\\\_%' AND name NOT LIKE '%dbt_tmp'",
                    parameters={"d": db}).result_columns
                for name in (names[0] if names else []):
                    m = int(name.split("_")[1])
                    count, total = client.query(
                        f"SELECT count(), sum(v) FROM {db}.{name}").result_rows[0]
                    assert count in valid[m], (name, count)
                    assert total == (m + 1) * count * (count - 1) // 2
                    seen.append((m, count))
                client.query("SELECT name, type FROM system.columns WHERE database = {d:String}",
                             parameters={"d": db})
                if finished:
                    break
        finally:
            client.close()

    ch_client.command(f"CREATE TABLE {db}.runs (model UInt8, build UInt8) "
                      "ENGINE = MergeTree ORDER BY tuple()")
    readers: list[BaseException] = []
    reader_thread = threading.Thread(target=lambda: readers.extend(run_threads(read, 3)))
    reader_thread.start()
    try:
        errors = run_threads(build, MODELS)
    finally:
        done.set()
        reader_thread.join(120)
    assert not errors, errors
    assert not readers, readers
    assert {m for m, _ in seen} == set(range(MODELS)), "the readers missed a model"
    for m in range(MODELS):
        rows = _model_rows(m, BUILDS - 1)
        assert ch_client.query(f"SELECT count(), sum(v) FROM {db}.model_{m}").result_rows[0] == (
            rows, (m + 1) * rows * (rows - 1) // 2)
    assert ch_client.command(f"SELECT count() FROM {db}.runs") == MODELS * BUILDS
    assert ch_client.command(
        f"SELECT count() FROM system.tables WHERE database = '{db}' AND name LIKE '%dbt_tmp'"
    ) == 0


# -- durability (a server of its own per test) -------------------------------------------------


def _fill(env: dict[str, str]) -> tuple[int, int]:
    """Create a database with a MergeTree table and a CTAS copy; returns (rows, id sum)."""
    client = make_client(load_settings(env=env))
    try:
        client.command("CREATE DATABASE durable")
        client.command("CREATE TABLE durable.t (id UInt64, s String) "
                       "ENGINE = MergeTree ORDER BY id")
        rows = 0
        for start in range(0, 300_000, 100_000):
            ids = list(range(start, start + 100_000))
            client.insert("durable.t", [ids, [f"s{i}" for i in ids]], column_names=["id", "s"],
                          column_oriented=True)
            rows += len(ids)
        client.command("CREATE TABLE durable.copy ENGINE = MergeTree ORDER BY id "
                       "AS SELECT * FROM durable.t WHERE id % 3 = 0")
        return rows, rows * (rows - 1) // 2
    finally:
        client.close()


def _check(env: dict[str, str], rows: int, id_sum: int) -> None:
    client = make_client(load_settings(env=env))
    try:
        assert client.query("SELECT count(), sum(id), countIf(s != concat('s', toString(id))) "
                            "FROM durable.t").result_rows[0] == (rows, id_sum, 0)
        copy = [i for i in range(rows) if i % 3 == 0]
        assert client.query("SELECT count(), sum(id) FROM durable.copy").result_rows[0] == (
            len(copy), sum(copy))
    finally:
        client.close()


def _wait_gone(pid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive after {timeout} s")


def test_kill_9_then_up_keeps_every_row(tmp_path: Path):
    """After SIGKILL, `course up` starts again on the same folder with every inserted row."""
    env = stack_env(tmp_path, free_port())
    course(env, "up", "clickhouse")
    try:
        rows, id_sum = _fill(env)
        pid = server_pid(env)
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        out = course(env, "up", "clickhouse").stdout
        assert "already running" not in out
        assert server_pid(env) != pid
        _check(env, rows, id_sum)
    finally:
        course(env, "down", "clickhouse", check=False)


def test_sigterm_shuts_down_cleanly_and_keeps_data(tmp_path: Path):
    """`course down` (SIGTERM) stops the server cleanly; the next `up` has all the data."""
    env = stack_env(tmp_path, free_port())
    course(env, "up", "clickhouse")
    try:
        rows, id_sum = _fill(env)
        pid = server_pid(env)
        out = course(env, "down", "clickhouse").stdout
        assert "stopped" in out and "killed" not in out
        _wait_gone(pid)
        log = (tmp_path / "logs" / "clickhouse.log").read_text(errors="replace")
        assert "stopped; data is on disk" in log
        course(env, "up", "clickhouse")
        _check(env, rows, id_sum)
    finally:
        course(env, "down", "clickhouse", check=False)


# -- memory ------------------------------------------------------------------------------------

STREAM_ROWS = 10_000_000


def _decimal_digits(n: int) -> int:
    """Total decimal digits of 0, 1, ..., n - 1."""
    total, low, width = 1 if n > 0 else 0, 1, 1  # 0 has one digit
    while low < n:
        high = min(n, low * 10)
        total += (high - low) * width
        low, width = high, width + 1
    return total
RSS_GROWTH_LIMIT = 300 * 1024 * 1024


def test_streaming_ten_million_rows_keeps_server_memory_flat(clickhouse_settings,
                                                              clickhouse_env):
    """Streaming 10M rows over HTTP keeps the server's RSS growth under 300 MB.

    The result is ~160 MB of TSV; streamed, the server grows by tens of MB, while holding
    the whole result (and chDB's copy of it) before sending grows it by hundreds.
    """
    server = psutil.Process(server_pid(clickhouse_env))
    baseline = server.memory_info().rss
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, server.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    s = clickhouse_settings
    lines = size = 0
    tail = b""
    try:
        with httpx.stream(
                "GET", s.clickhouse_url + "/",
                params={"query": f"SELECT number, toString(number) FROM numbers({STREAM_ROWS})"},
                auth=(s.clickhouse_user, s.clickhouse_password), timeout=120) as resp:
            assert resp.status_code == 200
            for chunk in resp.iter_raw(1 << 20):
                lines += chunk.count(b"\n")
                size += len(chunk)
                tail = (tail + chunk)[-64:]
    finally:
        stop.set()
        sampler.join()
    last = STREAM_ROWS - 1
    assert lines == STREAM_ROWS
    assert size == 2 * _decimal_digits(STREAM_ROWS) + 2 * STREAM_ROWS  # 'i\ti\n' per row
    assert tail.endswith(f"{last}\t{last}\n".encode())
    assert peak - baseline < RSS_GROWTH_LIMIT, f"RSS grew by {(peak - baseline) / 2**20:.0f} MiB"
