"""PostgreSQL side of the load: the source schema, and the source tables seeded with COPY."""

from __future__ import annotations

import contextlib
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
    # Only this transaction's durability waits less: if the server crashed right after the
    # commit, the load would be lost as a whole (never half-applied), and is run again.
    conn.execute("SET LOCAL synchronous_commit = off")
    # Room to build the indexes in memory (see copy_without_indexes).
    conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    tables = sql.SQL(", ").join(sql.Identifier(spec.table) for spec in files)
    conn.execute(sql.SQL("TRUNCATE {}").format(tables))
    counts = {}
    for spec in files:
        path = data_dir / spec.path
        try:
            counts[spec.table] = copy_without_indexes(conn, path, spec)
        except psycopg.errors.IntegrityError:
            # A key used twice: the indexes are back as they were and the table empty again
            # (savepoint); COPY it with them in place, which names the line.
            try:
                counts[spec.table] = copy_file(conn, path, spec)
            except psycopg.Error as exc:
                raise copy_error(path, exc) from None
            raise LoadError(f"{path}: PostgreSQL rejected the file: a key is used twice") \
                from None  # pragma: no cover (COPY with the indexes in place catches it)
        except psycopg.Error as exc:
            raise copy_error(path, exc) from None
    return counts


def copy_file(conn: psycopg.Connection, path: Path, spec: DataFile) -> int:
    """COPY one CSV file into its table; returns rows copied."""
    columns = sql.SQL(", ").join(sql.Identifier(n) for n in read_header(path))
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)").format(
        sql.Identifier(spec.table), columns)
    with conn.cursor() as cur:
        with cur.copy(copy_sql) as copy:
            for block in file_blocks(path):
                copy.write(block)
        return cur.rowcount


def copy_without_indexes(conn: psycopg.Connection, path: Path, spec: DataFile) -> int:
    """COPY into the (just truncated, so empty) table with its indexes built afterwards.

    Building an index over all rows at once (a sort) is much faster than growing it row by
    row. Everything happens inside a savepoint of the load's transaction: the indexes and
    constraints are recreated with their own names and definitions before it ends, no other
    session sees the table meanwhile (TRUNCATE holds its exclusive lock until commit), and a
    key used twice fails the new unique index, which rolls the savepoint back (indexes as they
    were, table empty) and raises IntegrityError.
    """
    with conn.transaction():
        indexes = conn.execute(
            """SELECT pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid)
               FROM pg_index AS i
               LEFT JOIN pg_constraint AS c
                 ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                 AND c.contype IN ('p', 'u', 'x')
               WHERE i.indrelid = %s::regclass
               ORDER BY c.conname IS NULL, i.indexrelid""",
            (spec.table,)).fetchall()
        # What a drop would lose and a CREATE not bring back: a foreign key that needs the
        # key's index, an index used as replica identity or marked for CLUSTER, a comment.
        # Then the indexes stay and grow row by row, as a plain COPY does.
        keeps = conn.execute(
            """SELECT EXISTS (SELECT FROM pg_constraint WHERE confrelid = %(t)s::regclass)
                   OR EXISTS (SELECT FROM pg_index WHERE indrelid = %(t)s::regclass
                              AND (indisreplident OR indisclustered))
                   OR EXISTS (SELECT FROM pg_description AS d
                              JOIN pg_index AS i ON d.objoid = i.indexrelid
                              WHERE i.indrelid = %(t)s::regclass)
                   OR EXISTS (SELECT FROM pg_description AS d
                              JOIN pg_constraint AS c ON d.objoid = c.oid
                              WHERE c.conrelid = %(t)s::regclass)""",
            {"t": spec.table}).fetchone()[0]
        if keeps:
            return copy_file(conn, path, spec)
        table = sql.Identifier(spec.table)
        for _, constraint, _ in indexes:
            if constraint:
                conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    table, sql.Identifier(constraint)))
        for definition, constraint, _ in indexes:
            if not constraint:
                name = re.match(r"CREATE (?:UNIQUE )?INDEX (\S+) ON", definition)
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name.group(1))))
        rows = copy_file(conn, path, spec)
        for definition, constraint, constraint_def in indexes:
            if constraint:
                conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    table, sql.Identifier(constraint), sql.SQL(constraint_def)))
            else:
                conn.execute(sql.SQL(definition))
        return rows


def cancel(conn: psycopg.Connection) -> None:
    """Ask the server to stop what the connection runs (e.g. a COPY from another thread)."""
    # If the request fails, the COPY runs to its end and the transaction rolls back all the same.
    with contextlib.suppress(psycopg.Error):
        conn.cancel_safe(timeout=5)


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
