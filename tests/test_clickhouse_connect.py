"""clickhouse-connect (the Python client learners use) against the embedded server over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from conftest import make_client

N_INSERT = 1_000_000


@pytest.fixture
def db(ch_client) -> Iterator[str]:
    """A database of the test's own, dropped afterwards."""
    name = f"cc_{uuid.uuid4().hex[:12]}"
    ch_client.command(f"CREATE DATABASE {name}")
    yield name
    ch_client.command(f"DROP DATABASE IF EXISTS {name}")


def sessionless(settings, **kwargs):
    """A client that sends no session_id (clickhouse-connect makes one up by default)."""
    return make_client(settings, autogenerate_session_id=False, **kwargs)


def test_command_returns_scalars_and_runs_ddl(ch_client, db):
    """`command` returns a single value, and runs DDL."""
    assert ch_client.command("SELECT 40 + 2") == 42
    assert ch_client.command("SELECT version()").startswith("26.")
    ch_client.command(f"CREATE TABLE {db}.t (a UInt8) ENGINE = Memory")
    assert ch_client.command(f"EXISTS TABLE {db}.t") == 1
    assert ch_client.command(f"SELECT count() FROM system.tables WHERE database = '{db}'") == 1


def test_query_with_server_side_parameters(ch_client):
    """`{name:Type}` placeholders are bound by the server, typed and unescaped."""
    result = ch_client.query(
        "SELECT {x:UInt32} * 2 AS y, {s:String} AS s, {d:Date} AS d",
        parameters={"x": 21, "s": "it's a \"test\"", "d": "2024-02-29"},
    )
    assert result.column_names == ("y", "s", "d")
    ((y, s, d),) = result.result_rows
    assert (y, s, d.isoformat()) == (42, "it's a \"test\"", "2024-02-29")


def test_query_with_client_side_parameters(ch_client):
    """`%(name)s` placeholders are quoted by the client; quotes in values stay data."""
    result = ch_client.query(
        "SELECT %(v)s + 1 AS v, %(s)s AS s, number FROM numbers(%(n)s) ORDER BY number",
        parameters={"v": 6, "s": "a'b\\c", "n": 3},
    )
    assert result.result_rows == [(7, "a'b\\c", i) for i in range(3)]


def test_query_df(ch_client):
    """`query_df` gives a DataFrame with the right dtypes and values."""
    df = ch_client.query_df(
        "SELECT number AS n, toString(number) AS s, number / 2 AS half FROM numbers(1000)")
    assert list(df.columns) == ["n", "s", "half"]
    assert len(df) == 1000
    assert int(df["n"].sum()) == sum(range(1000))
    assert df["s"].tolist() == [str(i) for i in range(1000)]
    assert df["half"].tolist() == [i / 2 for i in range(1000)]


def test_query_arrow(ch_client):
    """`query_arrow` gives an Arrow table (FORMAT Arrow over HTTP)."""
    table = ch_client.query_arrow(
        "SELECT number AS n, toString(number) AS s FROM numbers(100000)")
    assert table.num_rows == 100_000
    assert table.column_names == ["n", "s"]
    assert pc.sum(table["n"]).as_py() == sum(range(100_000))
    assert table["s"].to_pylist()[-1] in ("99999", b"99999")


def test_query_row_block_stream_totals(ch_client):
    """A row-block stream delivers every row, in several blocks."""
    n = 1_000_000
    rows = total = blocks = 0
    with ch_client.query_row_block_stream(
            "SELECT number FROM numbers(%(n)s)", parameters={"n": n},
            settings={"max_block_size": 50_000}) as stream:
        for block in stream:
            blocks += 1
            rows += len(block)
            total += sum(row[0] for row in block)
    assert rows == n
    assert total == sum(range(n))
    assert blocks > 1


def test_query_df_stream_totals(ch_client):
    """A DataFrame stream delivers every row across its frames."""
    n = 2_000_000
    rows = total = frames = 0
    with ch_client.query_df_stream(
            f"SELECT number, number % 7 AS m FROM numbers({n})",
            settings={"max_block_size": 100_000}) as stream:
        for df in stream:
            frames += 1
            rows += len(df)
            total += int(df["number"].sum()) + int(df["m"].sum())
    assert rows == n
    assert total == sum(range(n)) + sum(i % 7 for i in range(n))
    assert frames > 1


# -- inserts -----------------------------------------------------------------------------------

INSERT_COLUMNS = "id UInt64, name String, value Float64"
EXPECTED_ID_SUM = N_INSERT * (N_INSERT - 1) // 2


def _check_inserted(client, table: str, value_sum: float) -> None:
    """Row count and checksums computed by the server equal the ones computed here."""
    count, id_sum, name_ok, got_value_sum = client.query(
        f"SELECT count(), sum(id), countIf(name = concat('n', toString(id))), sum(value) "
        f"FROM {table}").result_rows[0]
    assert count == N_INSERT
    assert id_sum == EXPECTED_ID_SUM
    assert name_ok == N_INSERT
    assert got_value_sum == pytest.approx(value_sum)


@pytest.mark.parametrize("compress", ["lz4", "zstd", False])
def test_insert_million_rows(clickhouse_settings, db, compress):
    """`insert` of 1M rows arrives whole with lz4, zstd and no compression."""
    client = make_client(clickhouse_settings, compress=compress)
    try:
        table = f"{db}.ins"
        client.command(f"CREATE TABLE {table} ({INSERT_COLUMNS}) ENGINE = MergeTree ORDER BY id")
        ids = list(range(N_INSERT))
        names = [f"n{i}" for i in ids]
        values = [i * 0.5 for i in ids]
        summary = client.insert(table, [ids, names, values], column_names=["id", "name", "value"],
                                column_oriented=True)
        assert summary.written_rows == N_INSERT
        _check_inserted(client, table, sum(values))
    finally:
        client.close()


@pytest.mark.parametrize("compress", ["lz4", "zstd", False])
def test_insert_df_million_rows(clickhouse_settings, db, compress):
    """`insert_df` of 1M rows arrives whole with lz4, zstd and no compression."""
    client = make_client(clickhouse_settings, compress=compress)
    try:
        table = f"{db}.ins_df"
        client.command(f"CREATE TABLE {table} ({INSERT_COLUMNS}) ENGINE = MergeTree ORDER BY id")
        ids = np.arange(N_INSERT, dtype=np.uint64)
        df = pd.DataFrame({"id": ids, "name": [f"n{i}" for i in range(N_INSERT)],
                           "value": ids.astype(np.float64) * 0.25})
        summary = client.insert_df(table, df)
        assert summary.written_rows == N_INSERT
        _check_inserted(client, table, float(df["value"].sum()))
    finally:
        client.close()


# -- sessions, settings, database --------------------------------------------------------------


def test_session_temporary_table_is_private(clickhouse_settings):
    """A temporary table lives in its session; other sessions and sessionless clients miss it."""
    sid = f"cc-{uuid.uuid4()}"
    mine = make_client(clickhouse_settings, session_id=sid)
    other = make_client(clickhouse_settings, session_id=f"cc-{uuid.uuid4()}")
    bare = sessionless(clickhouse_settings)
    try:
        mine.command("CREATE TEMPORARY TABLE tmp_rows (a UInt32)")
        mine.insert("tmp_rows", [[i] for i in range(100)], column_names=["a"])
        assert mine.command("SELECT sum(a) FROM tmp_rows") == sum(range(100))
        for client in (other, bare):
            with pytest.raises(DatabaseError) as info:
                client.query("SELECT * FROM tmp_rows")
            assert info.value.code == 60
        assert mine.command("SELECT count() FROM tmp_rows") == 100  # still there
    finally:
        for client in (mine, other, bare):
            client.close()


def test_per_query_settings_do_not_persist(clickhouse_settings):
    """A query's `settings` apply to that query only; SET in the session persists."""
    client = make_client(clickhouse_settings, session_id=f"cc-{uuid.uuid4()}")
    probe = "SELECT value, changed FROM system.settings WHERE name = 'max_threads'"
    try:
        before = client.query(probe).result_rows[0]
        assert before[0] != "3"
        assert client.query(probe, settings={"max_threads": 3}).result_rows[0] == ("3", 1)
        assert client.query(probe).result_rows[0] == before
        client.command("SET max_threads = 5")
        assert client.query(probe).result_rows[0] == ("5", 1)
        assert client.query(probe, settings={"max_threads": 3}).result_rows[0] == ("3", 1)
        assert client.query(probe).result_rows[0] == ("5", 1)
    finally:
        client.close()


def test_database_of_one_request_does_not_stick_to_the_session(clickhouse_settings, db):
    """`database` on one request sets the current database for that request only."""
    sid = f"cc-{uuid.uuid4()}"
    with_db = make_client(clickhouse_settings, session_id=sid, database=db)
    plain = make_client(clickhouse_settings, session_id=sid)
    try:
        with_db.command("CREATE TABLE here (a UInt8) ENGINE = Memory")
        assert with_db.command("SELECT currentDatabase()") == db
        assert plain.command("SELECT currentDatabase()") == "default"
        assert plain.command(f"EXISTS TABLE {db}.here") == 1
        assert plain.command("EXISTS TABLE here") == 0
    finally:
        with_db.close()
        plain.close()


# -- errors ------------------------------------------------------------------------------------

MID_STREAM_ERROR = "SELECT number, throwIf(number = 2000000) FROM numbers(3000000)"


def test_mid_stream_error_raises(ch_client):
    """An error after rows were already sent raises; it never looks like a short result."""
    with pytest.raises(DatabaseError) as info:
        ch_client.query(MID_STREAM_ERROR)
    assert "395" in str(info.value) or info.value.code == 395


def test_mid_stream_error_raises_in_a_stream(ch_client):
    """The same error raises from a row-block stream, after the first blocks arrived."""
    rows = 0
    with pytest.raises(DatabaseError), ch_client.query_row_block_stream(
            MID_STREAM_ERROR, settings={"max_block_size": 65_536}) as stream:
        for block in stream:
            rows += len(block)
    assert 0 < rows <= 2_000_000


def test_error_codes(ch_client, db):
    """Errors carry ClickHouse's codes: unknown table 60, syntax error 62."""
    with pytest.raises(DatabaseError) as info:
        ch_client.query(f"SELECT * FROM {db}.nope")
    assert info.value.code == 60 and "UNKNOWN_TABLE" in str(info.value)
    with pytest.raises(DatabaseError) as info:
        ch_client.query("SELEKT 1")
    assert info.value.code == 62
    with pytest.raises(DatabaseError) as info:
        ch_client.command(f"DROP TABLE {db}.nope")
    assert info.value.code == 60
    with pytest.raises(DatabaseError) as info:
        ch_client.insert(f"{db}.nope", [[1]], column_names=["a"])
    assert info.value.code == 60
