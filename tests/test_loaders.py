"""The loaders against the session stack: exact counts, reloads, the federated and the ingested
PostgreSQL data, bad files, `course load` and `course reset`.

Every test that changes the data loads the sample again afterwards, so other tests (dbt, the
lessons) find the sample data as `load_all` leaves it.
"""

from __future__ import annotations

import csv
import hashlib
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from course.loaders import (
    DATA_DIR,
    PG_SOURCE_DB,
    RAW_DB,
    LoadError,
    ingest,
    load_all,
    load_csv_files,
    validate_dataset,
)
from course.loaders.clickhouse import split_statements
from course.loaders.commands import run_reset
from course.loaders.schema import CLICKHOUSE_INIT_DIR, POSTGRES_INIT_DIR, SOURCE_FILES

from conftest import course

SAMPLE = {
    "raw.customers": 15, "raw.products": 15, "raw.orders": 20, "raw.order_items": 32,
    "postgres.user_activities": 10, "postgres.inventory": 10,
    "postgres.payment_transactions": 10, "raw.pg_user_activities": 10, "raw.pg_inventory": 10,
    "raw.pg_payment_transactions": 10,
}

REPLACING = ("raw.pg_inventory", "raw.pg_payment_transactions")  # count with FINAL


def pg(settings) -> psycopg.Connection:
    return psycopg.connect(settings.postgres_dsn(), autocommit=True)


def counts(settings, ch) -> dict[str, int]:
    """Row counts as the servers report them (ingested tables deduplicated with FINAL)."""
    out = {}
    for name in SAMPLE:
        if name.startswith("postgres."):
            with pg(settings) as conn:
                out[name] = conn.execute(f"SELECT count(*) FROM {name.split('.')[1]}").fetchone()[0]
        else:
            final = " FINAL" if name in REPLACING else ""
            out[name] = int(ch.command(f"SELECT count() FROM {name}{final}"))
    return out


def staging_tables(ch) -> list[str]:
    return [r[0] for r in ch.query(
        f"SELECT name FROM system.tables WHERE database = '{RAW_DB}' AND name LIKE '\\_load\\_%'"
    ).result_rows]


@pytest.fixture(scope="module", autouse=True)
def sample_loaded(stack_settings):
    """The module starts from the sample data and leaves it loaded."""
    load_all(stack_settings)
    yield
    load_all(stack_settings)


@pytest.fixture
def reload_sample(stack_settings):
    """For tests that change the data: load the sample again afterwards."""
    yield
    load_all(stack_settings)


def test_sample_load_gives_exact_counts(stack_settings, ch_client):
    result = load_all(stack_settings)
    assert result.tables() == SAMPLE
    assert counts(stack_settings, ch_client) == SAMPLE
    assert sum(result.files.values()) == 112


def test_loading_twice_gives_the_same_counts(stack_settings, ch_client):
    load_all(stack_settings)
    again = load_all(stack_settings)
    assert again.tables() == SAMPLE
    assert counts(stack_settings, ch_client) == SAMPLE
    assert staging_tables(ch_client) == []


def test_sample_values_load_as_written(ch_client):
    """The lessons' numbers and wrinkles survive the load exactly."""
    revenue = ch_client.command("""
        SELECT sum(i.quantity * i.unit_price * (1 - i.discount_pct / 100))
        FROM raw.order_items AS i JOIN raw.orders AS o USING order_id
        WHERE o.status NOT IN ('cancelled', 'returned')""")
    assert Decimal(revenue) == Decimal("2000")
    emails = dict(ch_client.query(
        "SELECT customer_id, email FROM raw.customers WHERE customer_id IN (3, 14)").result_rows)
    assert emails == {3: "  Sophie.Wagner@Example.com", 14: " yuki.tanaka@example.com  "}
    assert ch_client.command("SELECT last_name FROM raw.customers WHERE customer_id = 2") \
        == "Müller"
    # The unknown cost is NULL, not 0, and only that one.
    assert ch_client.query("SELECT product_id FROM raw.products WHERE cost IS NULL") \
        .result_rows == [(110,)]
    assert ch_client.command("SELECT toTypeName(cost) FROM raw.products LIMIT 1") \
        == "Nullable(Decimal(10, 2))"


def test_raw_tables_have_the_contract_types_and_keys(ch_client):
    rows = ch_client.query(
        "SELECT name, engine, partition_key, sorting_key FROM system.tables "
        f"WHERE database = '{RAW_DB}' ORDER BY name").result_rows
    assert rows == [
        ("customers", "MergeTree", "", "customer_id"),
        ("order_items", "MergeTree", "", "order_id, order_item_id"),
        ("orders", "MergeTree", "toYYYYMM(order_ts)", "order_ts, order_id"),
        ("pg_inventory", "ReplacingMergeTree", "", "product_id, warehouse"),
        ("pg_payment_transactions", "ReplacingMergeTree", "toYYYYMM(created_at)", "payment_id"),
        ("pg_user_activities", "MergeTree", "toYYYYMM(occurred_at)",
         "activity_type, occurred_at, activity_id"),
        ("products", "MergeTree", "", "product_id"),
    ]
    types = dict(ch_client.query(
        "SELECT name, type FROM system.columns "
        f"WHERE database = '{RAW_DB}' AND table = 'pg_payment_transactions'").result_rows)
    assert types == {"payment_id": "Int64", "order_id": "Int64", "amount": "Decimal(10, 2)",
                     "method": "String", "status": "String",
                     "created_at": "DateTime64(6, 'UTC')", "updated_at": "DateTime64(6, 'UTC')"}


def test_federated_pg_source_answers_like_postgres(stack_settings, ch_client):
    with pg(stack_settings) as conn:
        for spec in SOURCE_FILES:
            in_pg = conn.execute(f"SELECT count(*) FROM {spec.table}").fetchone()[0]
            live = int(ch_client.command(f"SELECT count() FROM {PG_SOURCE_DB}.{spec.table}"))
            assert live == in_pg == 10
        total = conn.execute("SELECT sum(amount) FROM payment_transactions "
                             "WHERE status = 'succeeded'").fetchone()[0]
    assert Decimal(ch_client.command(
        f"SELECT sum(amount) FROM {PG_SOURCE_DB}.payment_transactions "
        "WHERE status = 'succeeded'")) == total == Decimal("745.00")
    # Live: a row added in PostgreSQL shows at once, without any ingestion.
    with pg(stack_settings) as conn:
        conn.execute("INSERT INTO user_activities VALUES (99, 1, 'login', '/login', now())")
        try:
            assert int(ch_client.command(
                f"SELECT count() FROM {PG_SOURCE_DB}.user_activities")) == 11
        finally:
            conn.execute("DELETE FROM user_activities WHERE activity_id = 99")


def test_incremental_ingestion_brings_exactly_the_new_rows(stack_settings, ch_client,
                                                             reload_sample):
    with pg(stack_settings) as conn:
        conn.execute("""
            INSERT INTO user_activities VALUES
                (11, 5, 'login', '/login', '2024-02-01 10:00:00Z'),
                (12, 5, 'page_view', '/products/112', '2024-02-01 10:01:00Z'),
                (13, 5, 'add_to_cart', '/products/112', '2024-02-01 10:02:00Z')""")
        conn.execute("UPDATE inventory SET quantity_on_hand = 35, "
                     "updated_at = '2024-02-02 08:00:00Z' "
                     "WHERE product_id = 101 AND warehouse = 'Berlin'")
        conn.execute("INSERT INTO inventory VALUES (106, 'Osaka', 20, '2024-02-02 09:00:00Z')")
        conn.execute("UPDATE payment_transactions SET status = 'refunded', "
                     "updated_at = '2024-02-10 12:00:00Z' WHERE payment_id = 5008")
    assert ingest(stack_settings) == {"raw.pg_user_activities": 3, "raw.pg_inventory": 2,
                                      "raw.pg_payment_transactions": 1}
    ids = ch_client.query("SELECT activity_id FROM raw.pg_user_activities WHERE activity_id > 10 "
                          "ORDER BY activity_id").result_rows
    assert ids == [(11,), (12,), (13,)]
    assert int(ch_client.command("SELECT count() FROM raw.pg_user_activities")) == 13
    # Updated rows replace their old versions (FINAL), new keys are added.
    assert int(ch_client.command("SELECT count() FROM raw.pg_inventory FINAL")) == 11
    assert ch_client.query(
        "SELECT quantity_on_hand FROM raw.pg_inventory FINAL "
        "WHERE product_id = 101 AND warehouse = 'Berlin'").result_rows == [(35,)]
    assert int(ch_client.command("SELECT count() FROM raw.pg_payment_transactions FINAL")) == 10
    assert ch_client.query("SELECT status FROM raw.pg_payment_transactions FINAL "
                           "WHERE payment_id = 5008").result_rows == [("refunded",)]
    # Nothing new: nothing arrives, nothing doubles.
    assert ingest(stack_settings) == {"raw.pg_user_activities": 0, "raw.pg_inventory": 0,
                                      "raw.pg_payment_transactions": 0}
    assert int(ch_client.command("SELECT count() FROM raw.pg_user_activities")) == 13


def test_csv_files_alone_reload_raw_and_leave_postgres_alone(stack_settings, ch_client,
                                                             reload_sample):
    """What the daily DAG runs: the CSV files again, then an incremental ingest."""
    with pg(stack_settings) as conn:
        conn.execute("INSERT INTO user_activities VALUES (11, 5, 'login', '/login', now())")
    assert load_csv_files(stack_settings) == {
        "raw.customers": 15, "raw.products": 15, "raw.orders": 20, "raw.order_items": 32}
    assert load_csv_files(stack_settings)["raw.orders"] == 20
    assert ingest(stack_settings)["raw.pg_user_activities"] == 1
    assert counts(stack_settings, ch_client) == {
        **SAMPLE, "postgres.user_activities": 11, "raw.pg_user_activities": 11}


# --- bad files ------------------------------------------------------------------------------

def copy_sample(target: Path) -> Path:
    """The sample plus 5 extra valid orders, so a partial load would change the counts."""
    for spec_path in ("customers.csv", "products.csv", "orders.csv", "order_items.csv",
                      "postgres/user_activities.csv", "postgres/inventory.csv",
                      "postgres/payment_transactions.csv"):
        (target / spec_path).parent.mkdir(parents=True, exist_ok=True)
        (target / spec_path).write_bytes((DATA_DIR / spec_path).read_bytes())
    with open(target / "orders.csv", "a") as f:
        for n in range(5):
            f.write(f"{2001 + n},1,2024-02-0{n + 1} 10:00:00,placed,2024-02-0{n + 1} 10:00:00\n")
    return target


def drop_column(path: Path, name: str) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    index = rows[0].index(name)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(r[:index] + r[index + 1:] for r in rows)


def replace_in_line(path: Path, line: int, old: bytes, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new)
    path.write_bytes(b"\n".join(lines))


BAD_FILES = {
    # case: (how to break the copy, file, line, column)
    "missing column": (lambda d: drop_column(d / "orders.csv", "status"),
                       "orders.csv", 1, "status"),
    # The last file checked: a partial load would already have loaded the others.
    "malformed date": (lambda d: replace_in_line(
        d / "postgres/payment_transactions.csv", 7, b"2024-01-22 15:26:00Z",
        b"2024-01-32 15:26:00Z"), "postgres/payment_transactions.csv", 7, "created_at"),
    "wrong encoding": (lambda d: replace_in_line(
        d / "customers.csv", 14, "López".encode(), "López".encode("latin-1")),
        "customers.csv", 14, "last_name"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_names_file_line_column_and_loads_nothing(case, stack_settings, ch_client,
                                                          tmp_path):
    breaks, file, line, column = BAD_FILES[case]
    data = copy_sample(tmp_path)
    load_all(stack_settings, data)  # valid: 25 orders
    assert counts(stack_settings, ch_client)["raw.orders"] == 25
    data = copy_sample(tmp_path / "broken")
    # 20 orders, not 25: had any file been loaded, the counts would show it.
    (data / "orders.csv").write_bytes((DATA_DIR / "orders.csv").read_bytes())
    breaks(data)
    with pytest.raises(LoadError) as failure:
        load_all(stack_settings, data)
    message = str(failure.value)
    assert str(data / file) in message
    assert f"line {line}," in message and f"column {column}:" in message
    after = counts(stack_settings, ch_client)
    assert after == {**SAMPLE, "raw.orders": 25}  # the previous load, untouched
    assert staging_tables(ch_client) == []
    load_all(stack_settings)


def test_bad_file_messages_say_what_is_wrong(tmp_path):
    data = copy_sample(tmp_path)
    replace_in_line(data / "order_items.csv", 5, b",1,60.00,", b",1,60.0.0,")
    with pytest.raises(LoadError, match=r"order_items.csv: line 5, column unit_price: "
                                        r"'60\.0\.0' is not a number"):
        validate_dataset(data)
    data = copy_sample(tmp_path / "b")
    replace_in_line(data / "customers.csv", 6, b"Lyon,", b"")
    with pytest.raises(LoadError, match=r"customers.csv: line 6, column updated_at: the line "
                                        r"has 7 values, the header 8 columns"):
        validate_dataset(data)
    with pytest.raises(LoadError, match="no such folder"):
        validate_dataset(tmp_path / "nowhere")


@pytest.mark.parametrize(("file", "line", "old", "new", "expected"), [
    ("order_items.csv", 8, b",1,300.00,", b",70000,300.00,",
     "column quantity: '70000' is not a whole number from 0 to 65535"),
    ("customers.csv", 5, b"2023-05-09,", b"2023-02-30,",
     "column signup_date: '2023-02-30' is not a date like 2024-01-31"),
    ("postgres/inventory.csv", 3, b"2024-01-31 18:00:00Z", b"2024-01-31 18:00:00",
     "column updated_at: '2024-01-31 18:00:00' is not a timestamp with its offset"),
    ("orders.csv", 3, b",delivered,", b",Delivered,",
     "column status: 'Delivered' is not one of placed, shipped"),
    ("products.csv", 11, b",20.00,,", b",,,", "column price: empty, but this column needs"),
    ("customers.csv", 5, b",camille.dubois@example.com,", b',"camille.dubois@example.com,',
     "column email: a quoted value runs past the end of the line"),
    ("postgres/user_activities.csv", 11, b"/checkout,", b"/checkout,,",
     "column (after occurred_at): the line has 6 values, the header 5 columns"),
])
def test_validation_names_the_bad_value(tmp_path, file, line, old, new, expected):
    data = copy_sample(tmp_path)
    replace_in_line(data / file, line, old, new)
    with pytest.raises(LoadError) as failure:
        validate_dataset(data)
    assert str(failure.value).startswith(f"{data / file}: line {line}, {expected}")


def test_a_row_postgres_rejects_is_named_and_nothing_changes(stack_settings, ch_client,
                                                              tmp_path):
    """A duplicate key is valid per value; PostgreSQL's COPY catches it, all is rolled back."""
    data = copy_sample(tmp_path)
    replace_in_line(data / "postgres/payment_transactions.csv", 4, b"5003,", b"5002,")
    with pytest.raises(LoadError, match=r"payment_transactions.csv: line 4, PostgreSQL "
                                        r"rejected the row: duplicate key"):
        load_all(stack_settings, data)
    assert counts(stack_settings, ch_client) == SAMPLE
    assert staging_tables(ch_client) == []


def test_source_copies_from_the_files_match_a_pull_from_postgres(stack_settings, ch_client,
                                                                  tmp_path, reload_sample):
    """`load_all` fills raw.pg_* from the source files instead of pulling them back out of
    PostgreSQL: on values that differ most between CSV readers, both give the same rows."""
    from course.loaders.clickhouse import Staging
    from course.loaders.ingest import INGESTED, ingest_table

    data = copy_sample(tmp_path)
    with open(data / "postgres/user_activities.csv", "a", encoding="utf-8") as f:
        f.write('901,1,page_view,\\N,2024-03-01 10:00:00+05\n'
                '902,1,page_view,"/a, ""quoted"" page",2024-03-01 10:00:00.123456Z\n'
                '903,1,page_view,,2024-03-01 10:00:00-03:30\n'
                '904,1,page_view,"",2024-03-01 10:00:00.5+0130\n'
                '905,1,page_view, spaced\\ ,1900-01-01 00:00:00Z\n'
                "906,1,page_view,'single',2299-12-31 23:59:59.999999Z\n")
    with open(data / "postgres/payment_transactions.csv", "a", encoding="utf-8") as f:
        f.write("9001,1,-0.5,card,failed,2024-03-01 10:00:00+01,2024-03-01 10:00:00.25+01:00\n")
    result = load_all(stack_settings, data)
    assert result.ingested["raw.pg_user_activities"] == 16
    with Staging(ch_client) as staging:
        for table in INGESTED:
            pulled = staging.create(f"pg_{table.table}")
            assert ingest_table(ch_client, table, into=pulled) == \
                result.ingested[table.target]
            for a, b in ((pulled, table.target), (table.target, pulled)):
                assert ch_client.command(
                    f"SELECT count() FROM (SELECT * FROM {a} EXCEPT SELECT * FROM {b})") == 0
    assert ch_client.query("SELECT page FROM raw.pg_user_activities WHERE activity_id "
                           "IN (901, 903) ORDER BY activity_id").result_rows == [("\\N",), ("",)]


def source_indexes(settings) -> list[tuple]:
    with pg(settings) as conn:
        return conn.execute(
            """SELECT c.relname, pg_get_indexdef(i.indexrelid), k.conname, k.contype,
                      obj_description(i.indexrelid, 'pg_class')
               FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid
               LEFT JOIN pg_constraint AS k ON k.conindid = i.indexrelid
               WHERE c.relname IN ('user_activities', 'inventory', 'payment_transactions')
               ORDER BY 1, 2""").fetchall()


def test_seeding_keeps_the_source_indexes_and_keys(stack_settings, ch_client):
    """The COPY builds the indexes after the rows; they come back with the same definitions,
    and a table whose index the rebuild would lose something of (a comment) keeps them."""
    before = source_indexes(stack_settings)
    assert {(r[0], r[2]) for r in before if r[3] == "p"} == {
        ("user_activities", "user_activities_pkey"), ("inventory", "inventory_pkey"),
        ("payment_transactions", "payment_transactions_pkey")}
    load_all(stack_settings)
    assert source_indexes(stack_settings) == before
    with pg(stack_settings) as conn:
        conn.execute("COMMENT ON INDEX inventory_updated_at IS 'kept'")
    try:
        load_all(stack_settings)
        after = source_indexes(stack_settings)
        assert [r[:4] for r in after] == [r[:4] for r in before]
        assert [r[4] for r in after if r[1].startswith("CREATE INDEX inventory_updated_at")] \
            == ["kept"]
    finally:
        with pg(stack_settings) as conn:
            conn.execute("COMMENT ON INDEX inventory_updated_at IS NULL")
    assert counts(stack_settings, ch_client) == SAMPLE


def test_a_failed_clickhouse_side_rolls_postgres_back(stack_settings, ch_client, tmp_path,
                                                      monkeypatch):
    """The COPY runs next to the ClickHouse inserts; when those fail, nothing is committed."""
    from course.loaders import pipeline

    def broken(*args, **kwargs):
        raise LoadError("ClickHouse failed on purpose")

    monkeypatch.setattr(pipeline, "stage_source_copies", broken)
    with pytest.raises(LoadError, match="on purpose"):
        load_all(stack_settings, copy_sample(tmp_path))
    assert counts(stack_settings, ch_client) == SAMPLE
    assert staging_tables(ch_client) == []


# --- init SQL -------------------------------------------------------------------------------

def test_init_sql_is_one_statement_per_request_and_idempotent(stack_settings, ch_client):
    from course.loaders.clickhouse import run_init_sql
    from course.loaders.postgres import create_source_schema

    (script,) = sorted(CLICKHOUSE_INIT_DIR.glob("*.sql"))
    statements = split_statements(script.read_text())
    assert len(statements) == 8  # the database and seven tables
    for statement in statements:
        assert statement.startswith(("CREATE DATABASE IF NOT EXISTS", "CREATE TABLE IF NOT EXISTS"))
    assert run_init_sql(ch_client) == 8  # again, over loaded tables: no error, no change
    with pg(stack_settings) as conn:
        create_source_schema(conn)
    assert counts(stack_settings, ch_client) == SAMPLE
    assert (POSTGRES_INIT_DIR / "01_source_schema.sql").is_file()


def test_split_statements_only_at_line_ends():
    sql = "-- a comment;\nCREATE TABLE t (s String DEFAULT ';');\n\n-- only a comment\nSELECT 1;"
    assert split_statements(sql) == ["CREATE TABLE t (s String DEFAULT ';')", "SELECT 1"]
    assert split_statements("SELECT 1;  \r\nSELECT 2") == ["SELECT 1", "SELECT 2"]


# --- the CLI --------------------------------------------------------------------------------

def data_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(DATA_DIR.rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def test_course_load_prints_counts(clickhouse_env):
    out = course(clickhouse_env, "load").stdout
    assert "validated 7 files (112 rows)" in out
    assert "raw.order_items" in out and "raw.pg_payment_transactions" in out


def test_course_load_bad_file_exits_1_with_the_place(clickhouse_env, stack_settings, ch_client,
                                                     tmp_path):
    data = copy_sample(tmp_path)
    drop_column(data / "products.csv", "price")
    proc = course(clickhouse_env, "load", "--data", str(data), check=False)
    assert proc.returncode == 1
    assert f"{data / 'products.csv'}: line 1, column price: missing" in proc.stderr
    assert counts(stack_settings, ch_client) == SAMPLE


def test_course_reset_drops_course_databases_and_reloads(clickhouse_env, stack_settings,
                                                        ch_client):
    before = data_fingerprint()
    ch_client.command("CREATE DATABASE IF NOT EXISTS marts")
    ch_client.command("CREATE TABLE marts.leftover (x UInt8) ENGINE = MergeTree ORDER BY x")
    ch_client.command("INSERT INTO raw.orders SELECT * FROM raw.orders")
    with pg(stack_settings) as conn:
        conn.execute("INSERT INTO inventory VALUES (115, 'Osaka', 1, now())")
    proc = course(clickhouse_env, "reset", "--yes")
    assert "dropped raw, pg_source, staging, intermediate, marts" in proc.stdout
    assert int(ch_client.command("SELECT count() FROM system.databases WHERE name = 'marts'")) \
        == 0
    assert counts(stack_settings, ch_client) == SAMPLE
    assert data_fingerprint() == before  # the learner's files are never touched


def test_course_reset_asks_first(stack_settings, ch_client, monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert run_reset(stack_settings, yes=False) == 1
    assert "nothing dropped" in capsys.readouterr().out
    assert counts(stack_settings, ch_client) == SAMPLE
