"""PostgreSQL side of the load: the source schema, and the source tables seeded with COPY."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from psycopg import sql

from ..settings import Settings
from ..stack import ServiceError
from .clickhouse import file_blocks
from .errors import LoadError
from .schema import POSTGRES_INIT_DIR, SOURCE_FILES, DataFile, init_sql_files
from .validate import read_header


def connect(settings: Settings) -> psycopg.Connection:
    """A connection to the source database (autocommit; use `conn.transaction()` for units)."""
    try:
        return psycopg.connect(settings.postgres_dsn(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ServiceError(f"cannot reach PostgreSQL at {settings.postgres_host}:"
                           f"{settings.postgres_port} ({str(exc).strip()}). "
                           "Start it with `course up`.") from None


def create_source_schema(conn: psycopg.Connection, folder: Path = POSTGRES_INIT_DIR) -> None:
    """Run the init scripts that Docker runs on first start (idempotent: IF NOT EXISTS).

    Without parameters psycopg sends a script as one simple query, so several statements are
    fine here, unlike over ClickHouse's HTTP interface.
    """
    for script in init_sql_files(folder):
        try:
            conn.execute(script.read_text(encoding="utf-8").encode())
        except psycopg.Error as exc:
            raise LoadError(f"{script}: PostgreSQL rejected it: {exc}") from None


def seed_source_tables(conn: psycopg.Connection, data_dir: Path,
                       files: tuple[DataFile, ...] = SOURCE_FILES) -> dict[str, int]:
    """Replace the source tables' rows with the data set's files; returns rows per table.

    Run it inside `conn.transaction()`: TRUNCATE and COPY then commit together, so the source
    holds either the old rows or the new ones, and loading again never duplicates a row.
    """
    tables = sql.SQL(", ").join(sql.Identifier(spec.table) for spec in files)
    conn.execute(sql.SQL("TRUNCATE {}").format(tables))
    counts = {}
    for spec in files:
        path = data_dir / spec.path
        columns = sql.SQL(", ").join(sql.Identifier(n) for n in read_header(path))
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)").format(
            sql.Identifier(spec.table), columns)
        try:
            with conn.cursor() as cur:
                with cur.copy(copy_sql) as copy:
                    for block in file_blocks(path):
                        copy.write(block)
                counts[spec.table] = cur.rowcount
        except psycopg.Error as exc:
            raise copy_error(path, exc) from None
    return counts


def copy_error(path: Path, exc: psycopg.Error) -> LoadError:
    """PostgreSQL's complaint about a file, with the line (and column) its context names.

    Validation cannot see everything PostgreSQL checks, e.g. a primary key used twice.
    """
    diag = exc.diag
    context = diag.context or ""
    # e.g. "COPY inventory, line 4, column quantity_on_hand: ..."; COPY counts the header too.
    found = re.search(r"line (\d+)(?:, column (\w+))?", context)
    where = ""
    if found:
        where = f" line {found.group(1)}," + (f" column {found.group(2)}:" if found.group(2)
                                              else "")
    detail = f" ({diag.message_detail})" if diag.message_detail else ""
    message = diag.message_primary or str(exc).strip()
    return LoadError(f"{path}:{where} PostgreSQL rejected the row: {message}{detail}")


def source_counts(conn: psycopg.Connection,
                  files: tuple[DataFile, ...] = SOURCE_FILES) -> dict[str, int]:
    """Row counts of the source tables."""
    return {spec.table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(spec.table))).fetchone()[0] for spec in files}


def drop_source_tables(conn: psycopg.Connection,
                       files: tuple[DataFile, ...] = SOURCE_FILES) -> None:
    """Drop the source tables (CASCADE: views a learner built on them go too)."""
    tables = sql.SQL(", ").join(sql.Identifier(spec.table) for spec in files)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(tables))
