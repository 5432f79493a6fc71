"""The ClickHouse HTTP interface at the wire level: paths, parameters, headers, errors,
request bodies, sessions and connection handling, checked with plain HTTP clients."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from http.client import HTTPConnection

import httpx
import lz4.frame
import pytest
import zstandard


@pytest.fixture(scope="module")
def http(clickhouse_settings) -> Iterator[httpx.Client]:
    """An httpx client on the test server, authenticated with Basic auth."""
    s = clickhouse_settings
    with httpx.Client(
        base_url=s.clickhouse_url, auth=(s.clickhouse_user, s.clickhouse_password), timeout=60
    ) as client:
        yield client


@pytest.fixture(scope="module")
def db(http) -> Iterator[str]:
    """A database of this module's own, dropped at the end."""
    name = f"raw_http_{uuid.uuid4().hex[:12]}"
    run(http, f"CREATE DATABASE {name}")
    yield name
    http.post("/", content=f"DROP DATABASE IF EXISTS {name}")


def run(client: httpx.Client, body: str, /, **params: str) -> str:
    """POST `body`, require 200, return the response as text."""
    resp = client.post("/", content=body.encode(), params=params)
    assert resp.status_code == 200, resp.text
    return resp.text


def scalar(client: httpx.Client, body: str, /, **params: str) -> int:
    return int(run(client, body, **params).strip())


def new_table(
    client: httpx.Client,
    db: str,
    columns: str = "id UInt32, s String",
    engine: str = "MergeTree ORDER BY tuple()",
) -> str:
    """Create a table with a unique name in `db`; returns its qualified name."""
    name = f"{db}.t_{uuid.uuid4().hex[:12]}"
    run(client, f"CREATE TABLE {name} ({columns}) ENGINE = {engine}")
    return name


def assert_error(resp: httpx.Response, status: int, code: int) -> None:
    """The response is the real server's error: HTTP status, code header, `Code: N.` body."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["X-ClickHouse-Exception-Code"] == str(code)
    assert resp.text.startswith(f"Code: {code}. DB::Exception:"), resp.text


def csv_rows(n: int, start: int = 0) -> bytes:
    return b"".join(b"%d,v%d\n" % (i, i) for i in range(start, start + n))


# -- paths, query forms, formats --------------------------------------------------------------


def test_ping_and_root_answer_ok_without_credentials(clickhouse_settings):
    """`/ping` and a bare `GET /` answer `Ok.` like the real server's static handlers."""
    url = clickhouse_settings.clickhouse_url
    for path in ("/ping", "/"):
        resp = httpx.get(url + path, timeout=5)
        assert resp.status_code == 200 and resp.text == "Ok.\n", (path, resp.text)


def test_get_with_query_param(http):
    """GET ?query= runs a read-only query; the default output format is TabSeparated."""
    resp = http.get("/", params={"query": "SELECT number * 3 FROM numbers(4)"})
    assert resp.status_code == 200
    assert resp.text == "".join(f"{i * 3}\n" for i in range(4))
    assert resp.headers["X-ClickHouse-Format"] == "TabSeparated"


def test_post_body_query(http):
    """POST with the query in the body."""
    assert run(http, "SELECT sum(number) FROM numbers(1000)") == f"{sum(range(1000))}\n"


def test_query_param_and_body_are_concatenated(http):
    """The `query` parameter and the body form one statement, in that order."""
    out = run(http, "WHERE number % 2 = 0", query="SELECT sum(number) FROM numbers(10)")
    assert out == f"{sum(i for i in range(10) if i % 2 == 0)}\n"


FORMAT_QUERY = "SELECT toUInt32(number) AS n, concat('v', toString(number)) AS s FROM numbers(3)"


def test_format_json_each_row_exact(http):
    """FORMAT JSONEachRow gives one compact JSON object per line."""
    resp = http.post("/", content=FORMAT_QUERY + " FORMAT JSONEachRow")
    expected = "".join(
        json.dumps({"n": i, "s": f"v{i}"}, separators=(",", ":")) + "\n" for i in range(3)
    )
    assert resp.text == expected
    assert resp.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert resp.headers["Content-Type"].startswith("application/json")


def test_format_csv_exact(http):
    """FORMAT CSV quotes strings and not numbers."""
    resp = http.post("/", content=FORMAT_QUERY + " FORMAT CSV")
    assert resp.text == "".join(f'{i},"v{i}"\n' for i in range(3))
    assert resp.headers["X-ClickHouse-Format"] == "CSV"
    assert resp.headers["Content-Type"].startswith("text/csv")


def test_format_tab_separated_exact(http):
    """FORMAT TabSeparated, with escaping of tabs and newlines in strings."""
    resp = http.post("/", content="SELECT 1 AS n, 'a\\tb\\nc' AS s FORMAT TabSeparated")
    assert resp.text == "1\ta\\tb\\nc\n"
    assert resp.headers["X-ClickHouse-Format"] == "TabSeparated"


def test_default_format_parameter(http):
    """`default_format` applies when the query names no format; a FORMAT clause wins."""
    resp = http.post("/", content=FORMAT_QUERY, params={"default_format": "CSV"})
    assert resp.text == "".join(f'{i},"v{i}"\n' for i in range(3))
    assert resp.headers["X-ClickHouse-Format"] == "CSV"
    resp = http.post("/", content=FORMAT_QUERY + " FORMAT TSV", params={"default_format": "CSV"})
    assert resp.text == "".join(f"{i}\tv{i}\n" for i in range(3))
    assert resp.headers["X-ClickHouse-Format"] == "TSV"


@pytest.mark.parametrize(
    "query",
    [
        "SHOW DATABASES",
        "DESCRIBE TABLE system.one",
        "EXISTS TABLE system.one",
        "EXPLAIN SELECT 1",
    ],
)
def test_non_select_row_statements_answer(http, query):
    """SHOW, DESCRIBE, EXISTS and EXPLAIN return rows with a format header, like SELECT."""
    resp = http.post("/", content=query)
    assert resp.status_code == 200, resp.text
    assert resp.text.strip()
    assert resp.headers["X-ClickHouse-Format"] == "TabSeparated"


def test_show_and_exists_results(http, db):
    """SHOW TABLES lists a new table; EXISTS says 1 for it and 0 for a missing one."""
    table = new_table(http, db)
    assert table.split(".")[1] in run(http, f"SHOW TABLES FROM {db}").split()
    assert run(http, f"EXISTS TABLE {table}") == "1\n"
    assert run(http, f"EXISTS TABLE {db}.nope_{uuid.uuid4().hex[:8]}") == "0\n"
    assert run(http, f"EXISTS TABLE {table} FORMAT JSONEachRow") == '{"result":1}\n'


# -- response headers ---------------------------------------------------------------------------


def test_format_header_only_for_row_results(http, db):
    """X-ClickHouse-Format comes with SELECT results, not with DDL or INSERT."""
    select = http.post("/", content="SELECT 1")
    assert select.headers.get("X-ClickHouse-Format") == "TabSeparated"
    name = f"{db}.fmt_{uuid.uuid4().hex[:8]}"
    ddl = http.post("/", content=f"CREATE TABLE {name} (a UInt8) ENGINE = Memory")
    assert ddl.status_code == 200 and "X-ClickHouse-Format" not in ddl.headers
    insert = http.post("/", content=f"INSERT INTO {name} FORMAT CSV\n1\n2\n")
    assert insert.status_code == 200 and "X-ClickHouse-Format" not in insert.headers
    insert_values = http.post("/", content=f"INSERT INTO {name} VALUES (3)")
    assert insert_values.status_code == 200 and "X-ClickHouse-Format" not in insert_values.headers


def test_summary_written_rows_after_insert(http, db):
    """X-ClickHouse-Summary's written_rows is the number of rows the INSERT wrote."""
    table = new_table(http, db)
    n = 12_345
    resp = http.post("/", content=f"INSERT INTO {table} FORMAT CSV\n".encode() + csv_rows(n))
    assert resp.status_code == 200, resp.text
    summary = json.loads(resp.headers["X-ClickHouse-Summary"])
    assert int(summary["written_rows"]) == n
    resp = http.post("/", content=f"INSERT INTO {table} SELECT number, '' FROM numbers(77)")
    assert int(json.loads(resp.headers["X-ClickHouse-Summary"])["written_rows"]) == 77
    assert scalar(http, f"SELECT count() FROM {table}") == n + 77


def test_query_id_is_echoed(http):
    """X-ClickHouse-Query-Id echoes `query_id`, and one is made up when absent."""
    qid = f"test-{uuid.uuid4()}"
    resp = http.post("/", content="SELECT 1", params={"query_id": qid})
    assert resp.headers["X-ClickHouse-Query-Id"] == qid
    generated = http.post("/", content="SELECT 1").headers["X-ClickHouse-Query-Id"]
    assert generated and generated != qid


def test_timezone_header_is_the_server_timezone(http):
    """X-ClickHouse-Timezone names the server's time zone."""
    resp = http.post("/", content="SELECT timezone()")
    assert resp.headers["X-ClickHouse-Timezone"] == resp.text.strip()


def test_query_parameters(http):
    """`param_*` URL parameters fill `{name:Type}` placeholders, typed and unescaped."""
    resp = http.post(
        "/",
        content="SELECT {x:UInt32} + 1 AS y, {s:String} AS s, "
        "{arr:Array(UInt8)} AS arr FORMAT JSONEachRow",
        params={"param_x": "41", "param_s": 'it\'s a "test"', "param_arr": "[1,2]"},
    )
    assert resp.status_code == 200, resp.text
    assert json.loads(resp.text) == {"y": 42, "s": 'it\'s a "test"', "arr": [1, 2]}


def test_settings_as_url_parameters(http):
    """Unknown-to-HTTP URL parameters are settings for the query."""
    out = run(http, "SELECT value FROM system.settings WHERE name = 'max_threads'", max_threads="3")
    assert out.strip() == "3"


# -- authentication -----------------------------------------------------------------------------


def test_wrong_password_is_403_with_code_516(clickhouse_settings):
    """A wrong password is refused with 403 and AUTHENTICATION_FAILED (516)."""
    s = clickhouse_settings
    resp = httpx.post(
        s.clickhouse_url + "/",
        content=b"SELECT 1",
        auth=(s.clickhouse_user, s.clickhouse_password + "x"),
        timeout=10,
    )
    assert_error(resp, 403, 516)
    resp = httpx.post(s.clickhouse_url + "/", content=b"SELECT 1", timeout=10)  # no password
    assert resp.status_code == 403 and resp.headers["X-ClickHouse-Exception-Code"] == "516"


def test_basic_auth(clickhouse_settings):
    """Basic auth with a UTF-8 password works."""
    s = clickhouse_settings
    token = base64.b64encode(f"{s.clickhouse_user}:{s.clickhouse_password}".encode()).decode()
    resp = httpx.post(
        s.clickhouse_url + "/",
        content=b"SELECT currentUser()",
        headers={"Authorization": f"Basic {token}"},
        timeout=10,
    )
    assert resp.status_code == 200 and resp.text == f"{s.clickhouse_user}\n"


def test_x_clickhouse_user_and_key_headers(clickhouse_settings):
    """X-ClickHouse-User / X-ClickHouse-Key authenticate; the key is sent as UTF-8 bytes."""
    s = clickhouse_settings
    headers = {
        "X-ClickHouse-User": s.clickhouse_user.encode(),
        "X-ClickHouse-Key": s.clickhouse_password.encode(),
    }
    resp = httpx.post(s.clickhouse_url + "/", content=b"SELECT 1", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    headers["X-ClickHouse-Key"] = b"wrong"
    resp = httpx.post(s.clickhouse_url + "/", content=b"SELECT 1", headers=headers, timeout=10)
    assert_error(resp, 403, 516)


def test_user_and_password_url_parameters(clickhouse_settings):
    """`user` and `password` URL parameters authenticate (percent-encoded UTF-8)."""
    s = clickhouse_settings
    params = {"user": s.clickhouse_user, "password": s.clickhouse_password, "query": "SELECT 2"}
    resp = httpx.get(s.clickhouse_url + "/", params=params, timeout=10)
    assert resp.status_code == 200 and resp.text == "2\n"
    params["password"] = "nope"
    assert_error(httpx.get(s.clickhouse_url + "/", params=params, timeout=10), 403, 516)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_syntax_error_is_400_code_62(http, method):
    """A syntax error is 400 / SYNTAX_ERROR on GET and POST alike (parsing comes first)."""
    if method == "GET":
        resp = http.get("/", params={"query": "SELEC 1"})
    else:
        resp = http.post("/", content=b"SELEC 1")
    assert_error(resp, 400, 62)


def test_unknown_table_is_404_code_60(http, db):
    """An unknown table is 404 / UNKNOWN_TABLE."""
    assert_error(http.post("/", content=f"SELECT * FROM {db}.missing_table"), 404, 60)


def test_unknown_format_is_404_code_73(http):
    """An unknown output format is 404 / UNKNOWN_FORMAT."""
    assert_error(http.post("/", content=b"SELECT 1 FORMAT NoSuchFormat"), 404, 73)


def test_throw_if_is_500_code_395(http):
    """throwIf is a server error: 500 / FUNCTION_THROW_IF_VALUE_IS_NON_ZERO."""
    assert_error(http.post("/", content=b"SELECT throwIf(1)"), 500, 395)


def test_mid_stream_error_ends_the_body_with_a_tagged_exception_block(http):
    """An error after rows went out: 200, then the body ends with the tagged exception block
    (`\\r\\n__exception__\\r\\n<tag>\\r\\n<message>\\n<length> <tag>\\r\\n__exception__\\r\\n`)."""
    resp = http.post("/", content=b"SELECT number, throwIf(number = 2000000) FROM numbers(3000000)")
    assert resp.status_code == 200
    tag = resp.headers["X-ClickHouse-Exception-Tag"]
    assert len(tag) == 16
    body = resp.content
    opener = b"\r\n__exception__\r\n" + tag.encode() + b"\r\n"
    assert body.count(opener) == 1
    rows, block = body.split(opener)
    assert block.endswith(b" " + tag.encode() + b"\r\n__exception__\r\n")
    assert b"Code: 395. DB::Exception:" in block
    lines = rows.split(b"\n")
    assert lines[-1] == b""  # the rows before the error are whole lines
    assert 0 < len(lines) - 1 <= 2_000_000
    assert lines[0] == b"0\t0" and lines[-2] == f"{len(lines) - 2}\t0".encode()


@pytest.mark.parametrize("kind", ["CREATE", "INSERT"])
def test_get_is_read_only(http, db, kind):
    """GET refuses a CREATE or INSERT with READONLY (164), and nothing happens."""
    table = new_table(http, db)
    other = f"{db}.ro_{uuid.uuid4().hex[:8]}"
    query = (
        f"CREATE TABLE {other} (a UInt8) ENGINE = Memory"
        if kind == "CREATE"
        else f"INSERT INTO {table} SELECT number, '' FROM numbers(5)"
    )
    resp = http.get("/", params={"query": query})
    assert resp.headers.get("X-ClickHouse-Exception-Code") == "164", resp.text
    assert resp.status_code >= 400
    assert scalar(http, f"SELECT count() FROM {table}") == 0
    assert run(http, f"EXISTS TABLE {other}") == "0\n"


def test_two_statements_are_rejected_and_not_run(http, db):
    """Two statements in one request: SYNTAX_ERROR (62), and neither statement runs."""
    table = new_table(http, db)
    resp = http.post(
        "/",
        content=f"INSERT INTO {table} SELECT number, '' FROM numbers(3); "
        f"INSERT INTO {table} SELECT number, '' FROM numbers(4)",
    )
    assert_error(resp, 400, 62)
    resp = http.post("/", content=f"SELECT 1; DROP TABLE {table}")
    assert_error(resp, 400, 62)
    assert scalar(http, f"SELECT count() FROM {table}") == 0
    assert run(http, f"EXISTS TABLE {table}") == "1\n"


def test_trailing_semicolon_is_one_statement(http):
    """A single trailing ';' (even with a comment after it) is still one statement."""
    assert run(http, "SELECT 5; -- done\n") == "5\n"


# -- INSERT bodies -----------------------------------------------------------------------------

STRINGS = [f"row {i}, with \"quotes\" and 'apostrophes'" for i in range(500)]


def _table_rows(client: httpx.Client, table: str) -> list[tuple[int, str]]:
    text = run(client, f"SELECT id, s FROM {table} ORDER BY id FORMAT JSONEachRow")
    return [(r["id"], r["s"]) for r in map(json.loads, text.splitlines())]


def test_insert_format_csv_in_body(http, db):
    """INSERT ... FORMAT CSV with the data after the head in the body."""
    table = new_table(http, db)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(enumerate(STRINGS))
    run(http, f"INSERT INTO {table} FORMAT CSV\n{buf.getvalue()}")
    assert _table_rows(http, table) == list(enumerate(STRINGS))


def test_insert_format_tab_separated_in_body(http, db):
    """INSERT ... FORMAT TabSeparated with the data in the body."""
    table = new_table(http, db)
    data = "".join(f"{i}\t{s}\n" for i, s in enumerate(STRINGS))
    run(http, f"INSERT INTO {table} FORMAT TabSeparated\n{data}")
    assert _table_rows(http, table) == list(enumerate(STRINGS))


def test_insert_format_json_each_row_in_body(http, db):
    """INSERT ... FORMAT JSONEachRow with the data in the body."""
    table = new_table(http, db)
    data = "".join(json.dumps({"id": i, "s": s}) + "\n" for i, s in enumerate(STRINGS))
    run(http, f"INSERT INTO {table} FORMAT JSONEachRow {data}")
    assert _table_rows(http, table) == list(enumerate(STRINGS))


def test_insert_values_in_body(http, db):
    """INSERT ... VALUES with the tuples in the body."""
    table = new_table(http, db)
    values = ", ".join(
        f"({i}, '{s.replace(chr(39), chr(92) + chr(39))}')" for i, s in enumerate(STRINGS)
    )
    run(http, f"INSERT INTO {table} VALUES {values}")
    assert _table_rows(http, table) == list(enumerate(STRINGS))


def test_insert_query_param_with_data_in_body(http, db):
    """The INSERT head in `query` and only the data in the body."""
    table = new_table(http, db)
    run(http, csv_rows(100).decode(), query=f"INSERT INTO {table} FORMAT CSV")
    assert scalar(http, f"SELECT count() FROM {table}") == 100
    assert scalar(http, f"SELECT sum(id) FROM {table}") == sum(range(100))


def test_chunked_body_split_anywhere(http, db):
    """A chunked body whose chunks split the head mid-word and before its line break."""
    table = new_table(http, db)
    n = 30_000

    def body() -> Iterator[bytes]:
        for part in (b"INSERT INTO ", table.encode(), b" FOR", b"MAT TabSeparated", b"  "):
            yield part
            time.sleep(0.02)  # separate TCP segments, so the server sees the splits
        yield b"\n"
        for start in range(0, n, 7_000):
            yield b"".join(b"%d\tx%d\n" % (i, i) for i in range(start, min(n, start + 7_000)))

    resp = http.post("/", content=body())
    assert resp.status_code == 200, resp.text
    assert scalar(http, f"SELECT count() FROM {table}") == n
    assert scalar(http, f"SELECT sum(id) FROM {table}") == sum(range(n))
    assert scalar(http, f"SELECT countIf(s != concat('x', toString(id))) FROM {table}") == 0


# -- Content-Encoding --------------------------------------------------------------------------

N_ENC = 200_000
ENC_BODY = csv_rows(N_ENC)


def _compress(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return lz4.frame.compress(data)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "lz4"])
def test_compressed_request_body(http, db, encoding):
    """A whole request (head and data) compressed with each supported Content-Encoding."""
    table = new_table(http, db)
    body = _compress(encoding, f"INSERT INTO {table} FORMAT CSV\n".encode() + ENC_BODY)
    resp = http.post("/", content=body, headers={"Content-Encoding": encoding})
    assert resp.status_code == 200, resp.text
    assert scalar(http, f"SELECT count() FROM {table}") == N_ENC
    assert scalar(http, f"SELECT sum(id) FROM {table}") == sum(range(N_ENC))


def test_compressed_select_body(http):
    """A compressed SELECT runs too."""
    resp = http.post(
        "/", content=gzip.compress(b"SELECT 40 + 2"), headers={"Content-Encoding": "gzip"}
    )
    assert resp.text == "42\n"


def test_lz4_several_frames_all_rows_arrive(http, db):
    """lz4 frames concatenated (one per block, like clickhouse-connect) all get inserted."""
    table = new_table(http, db)
    blocks = [csv_rows(25_000, start) for start in range(0, 100_000, 25_000)]
    body = b"".join(lz4.frame.compress(b) for b in blocks)
    resp = http.post(
        "/",
        content=body,
        params={"query": f"INSERT INTO {table} FORMAT CSV"},
        headers={"Content-Encoding": "lz4"},
    )
    assert resp.status_code == 200, resp.text
    assert scalar(http, f"SELECT count() FROM {table}") == 100_000
    assert scalar(http, f"SELECT sum(id) FROM {table}") == sum(range(100_000))


@pytest.mark.parametrize("encoding", ["lz4", "zstd"])
def test_truncated_compressed_body_inserts_nothing(http, db, encoding):
    """A body cut inside its last frame is an HTTP error, and no row of it is kept."""
    table = new_table(http, db)
    data = csv_rows(400_000)  # several MiB: the server has streamed batches before the end
    body = _compress(encoding, data)[:-20]
    resp = http.post(
        "/",
        content=body,
        params={"query": f"INSERT INTO {table} FORMAT CSV"},
        headers={"Content-Encoding": encoding},
    )
    assert resp.status_code >= 400
    assert "X-ClickHouse-Exception-Code" in resp.headers
    assert scalar(http, f"SELECT count() FROM {table}") == 0


def test_garbage_lz4_body_is_an_http_error(http, db):
    """Bytes that are not lz4 under Content-Encoding: lz4 get an error response."""
    table = new_table(http, db)
    resp = http.post(
        "/",
        content=b"INSERT INTO t FORMAT CSV\n1,2\n" * 50,
        params={"query": f"INSERT INTO {table} FORMAT CSV"},
        headers={"Content-Encoding": "lz4"},
    )
    assert resp.status_code >= 400
    assert "X-ClickHouse-Exception-Code" in resp.headers
    assert scalar(http, f"SELECT count() FROM {table}") == 0


def test_unknown_content_encoding_is_an_error(http):
    """An unknown Content-Encoding is NOT_IMPLEMENTED (501, code 48) naming the encoding."""
    resp = http.post("/", content=b"SELECT 1", headers={"Content-Encoding": "x-made-up"})
    assert_error(resp, 501, 48)
    assert "Unknown compression method 'x-made-up'" in resp.text


# -- external data -----------------------------------------------------------------------------

EXTERNAL_ROWS = [(i, f"name{i}") for i in range(1, 51)]
EXTERNAL_TSV = "".join(f"{a}\t{b}\n" for a, b in EXTERNAL_ROWS).encode()


def test_external_data_with_structure(http):
    """multipart/form-data file + `<name>_structure`: a temporary table for the query."""
    resp = http.post(
        "/",
        params={
            "query": "SELECT count(), sum(a), max(b) FROM tbl",
            "tbl_structure": "a UInt32, b String",
        },
        files={"tbl": ("tbl.tsv", EXTERNAL_TSV)},
    )
    assert resp.status_code == 200, resp.text
    count, total, top = len(EXTERNAL_ROWS), sum(a for a, _ in EXTERNAL_ROWS), max(
        b for _, b in EXTERNAL_ROWS)
    assert resp.text == f"{count}\t{total}\t{top}\n"


def test_external_data_with_types_and_names(http):
    """`<name>_types` and `<name>_names`, and an external table joined with numbers()."""
    resp = http.post(
        "/",
        params={
            "query": "SELECT id, label FROM ext WHERE id IN (SELECT number FROM numbers(4)) "
            "ORDER BY id FORMAT CSV",
            "ext_types": "UInt32,String",
            "ext_names": "id,label",
        },
        files={"ext": ("ext.tsv", EXTERNAL_TSV)},
    )
    assert resp.status_code == 200, resp.text
    assert resp.text == "".join(f'{a},"{b}"\n' for a, b in EXTERNAL_ROWS if a < 4)


def test_external_table_does_not_outlive_its_query(http):
    """An external table is gone on the next request of the same session."""
    sid = f"ext-{uuid.uuid4()}"
    resp = http.post(
        "/",
        params={
            "query": "SELECT count() FROM tbl",
            "session_id": sid,
            "tbl_structure": "a UInt32, b String",
        },
        files={"tbl": ("tbl.tsv", EXTERNAL_TSV)},
    )
    assert resp.text == f"{len(EXTERNAL_ROWS)}\n"
    resp = http.post("/", content=b"SELECT count() FROM tbl", params={"session_id": sid})
    assert_error(resp, 404, 60)


# -- sessions ----------------------------------------------------------------------------------


def test_session_keeps_set_and_temporary_tables(http):
    """Within a `session_id`, SET and temporary tables persist; other sessions don't see them."""
    sid = f"s-{uuid.uuid4()}"
    run(http, "SET max_threads = 3", session_id=sid)
    run(http, "CREATE TEMPORARY TABLE tmp (a UInt32) ENGINE = Memory", session_id=sid)
    run(http, "INSERT INTO tmp SELECT number FROM numbers(10)", session_id=sid)
    setting = "SELECT value FROM system.settings WHERE name = 'max_threads'"
    assert run(http, setting, session_id=sid).strip() == "3"
    assert scalar(http, "SELECT sum(a) FROM tmp", session_id=sid) == sum(range(10))
    other = f"s-{uuid.uuid4()}"
    assert_error(
        http.post("/", content=b"SELECT * FROM tmp", params={"session_id": other}), 404, 60
    )
    assert_error(http.post("/", content=b"SELECT * FROM tmp"), 404, 60)
    assert run(http, setting, session_id=other).strip() != "3"


def test_busy_session_is_locked_at_once(http, clickhouse_settings):
    """A second query on a session that is running one fails fast with SESSION_IS_LOCKED."""
    sid = f"busy-{uuid.uuid4()}"
    slow: dict[str, httpx.Response] = {}

    def run_slow() -> None:
        s = clickhouse_settings
        slow["resp"] = httpx.post(
            s.clickhouse_url + "/",
            params={"session_id": sid},
            content=b"SELECT sleepEachRow(0.5) FROM numbers(4) SETTINGS max_block_size = 1",
            auth=(s.clickhouse_user, s.clickhouse_password),
            timeout=30,
        )

    thread = threading.Thread(target=run_slow)
    thread.start()
    try:
        time.sleep(0.5)
        assert thread.is_alive()
        started = time.monotonic()
        resp = http.post("/", content=b"SELECT 1", params={"session_id": sid})
        elapsed = time.monotonic() - started
        assert resp.headers.get("X-ClickHouse-Exception-Code") == "373", resp.text
        assert resp.status_code >= 400
        assert elapsed < 1.0
        assert thread.is_alive()  # it really was still running
    finally:
        thread.join(30)
    assert slow["resp"].status_code == 200 and slow["resp"].text == "0\n" * 4
    assert run(http, "SELECT 1", session_id=sid) == "1\n"  # free again afterwards


def test_session_check_on_unknown_session(http):
    """`session_check=1` with a session that does not exist is SESSION_NOT_FOUND (372)."""
    resp = http.post(
        "/",
        content=b"SELECT 1",
        params={"session_id": f"nope-{uuid.uuid4()}", "session_check": "1"},
    )
    assert resp.headers.get("X-ClickHouse-Exception-Code") == "372", resp.text
    assert resp.status_code >= 400


def test_session_check_on_existing_session(http):
    """`session_check=1` on a session made earlier works."""
    sid = f"s-{uuid.uuid4()}"
    run(http, "SET max_threads = 2", session_id=sid)
    assert run(http, "SELECT getSetting('max_threads')", session_id=sid, session_check="1") == "2\n"


# -- connection handling ------------------------------------------------------------------------


def test_malformed_http_gets_400_and_server_keeps_serving(clickhouse_settings):
    """Garbage on the socket is answered with 400, and the next request still works."""
    s = clickhouse_settings
    with socket.create_connection((s.clickhouse_host, s.clickhouse_port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01 NOT HTTP AT ALL \x00\xff\r\n\r\n")
        reply = b""
        while True:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 400"), reply[:100]
    assert httpx.get(s.clickhouse_url + "/ping", timeout=5).text == "Ok.\n"


def test_keep_alive_many_requests_on_one_connection(clickhouse_settings):
    """Many requests reuse one HTTP/1.1 connection."""
    s = clickhouse_settings
    token = base64.b64encode(f"{s.clickhouse_user}:{s.clickhouse_password}".encode()).decode()
    conn = HTTPConnection(s.clickhouse_host, s.clickhouse_port, timeout=10)
    try:
        conn.request("GET", "/ping")
        assert conn.getresponse().read() == b"Ok.\n"
        sock = conn.sock
        for i in range(100):
            conn.request(
                "POST",
                "/",
                body=f"SELECT {i} * 2".encode(),
                headers={"Authorization": f"Basic {token}"},
            )
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == f"{i * 2}\n".encode()
        conn.request("POST", "/", body=b"SELECT nope", headers={"Authorization": f"Basic {token}"})
        resp = conn.getresponse()
        assert resp.status == 404 and resp.read()  # an error keeps the connection too
        conn.request("POST", "/", body=b"SELECT 7", headers={"Authorization": f"Basic {token}"})
        assert conn.getresponse().read() == b"7\n"
        assert conn.sock is sock
    finally:
        conn.close()


def test_ping_answers_while_a_long_query_runs(http, clickhouse_settings):
    """/ping answers within a second while a 3-second query is running."""
    s = clickhouse_settings
    done = threading.Event()

    def long_query() -> None:
        run(http, "SELECT sleepEachRow(1) FROM numbers(3) SETTINGS max_block_size = 1")
        done.set()

    thread = threading.Thread(target=long_query)
    started = time.monotonic()
    thread.start()
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        resp = httpx.get(s.clickhouse_url + "/ping", timeout=5)
        assert resp.text == "Ok.\n"
        assert time.monotonic() - t0 < 1.0
        assert not done.is_set()
    finally:
        thread.join(30)
    assert done.is_set() and time.monotonic() - started >= 3.0


# -- big results in formats that are one document, not a sequence of blocks ---------------------

BIG = "SELECT number, toString(number) AS s FROM numbers(2000000)"


@pytest.mark.parametrize("wait_end", ["0", "1"])
def test_big_json_result_is_one_valid_document(http, wait_end):
    resp = http.post("/", content=BIG + " FORMAT JSON", params={"wait_end_of_query": wait_end})
    doc = json.loads(resp.content)
    # UInt64 is a bare JSON number: output_format_json_quote_64bit_integers is 0 in ClickHouse 26
    assert doc["rows"] == 2_000_000 and doc["data"][-1] == {"number": 1999999, "s": "1999999"}


def test_big_csv_with_names_has_one_header(http):
    resp = http.post("/", content=BIG + " FORMAT CSVWithNames")
    lines = resp.content.splitlines()
    assert lines[0] == b'"number","s"' and len(lines) == 2_000_001
    assert lines.count(b'"number","s"') == 1


def test_big_arrow_stream_is_one_stream(http):
    import pyarrow as pa

    resp = http.post("/", content=BIG + " FORMAT ArrowStream")
    table = pa.ipc.open_stream(resp.content).read_all()
    assert table.num_rows == 2_000_000


@pytest.mark.parametrize("wait_end", ["0", "1"])
def test_big_tab_separated_result_is_complete(http, wait_end):
    resp = http.post("/", content=BIG, params={"wait_end_of_query": wait_end})
    assert resp.status_code == 200
    assert resp.content.count(b"\n") == 2_000_000
    assert resp.content.endswith(b"1999999\t1999999\n")
    if wait_end == "1":  # finished before the headers: a length, and a summary
        assert int(resp.headers["content-length"]) == len(resp.content)
