"""ClickHouse side of the load: the init SQL, and CSV files into raw tables without duplicates.

Reloading replaces a table's rows through a staging table and `EXCHANGE TABLES`, not through
TRUNCATE and insert: the new rows go into `raw._load_<table>` (same definition), and only once
every file of the data set is in and the PostgreSQL seed succeeded do the tables swap, each
swap atomic. A failure at any point before that leaves the live tables exactly as they were,
and readers (dbt, a notebook) never see a half-empty table while a load runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from .errors import LoadError
from .schema import CLICKHOUSE_INIT_DIR, RAW_DB, RAW_FILES, DataFile, init_sql_files
from .validate import read_header

STAGING_PREFIX = "_load_"
READ_BYTES = 4 << 20
# Read the file exactly as validated: keep spaces around unquoted values (a stray space in an
# email is one of the lessons' wrinkles), never read 'x' as a quoted string, and an empty value
# is NULL in a Nullable column (the only columns validation lets be empty).
CSV_SETTINGS = {
    "input_format_csv_trim_whitespaces": 0,
    "format_csv_allow_single_quotes": 0,
    "input_format_csv_empty_as_default": 1,
    "date_time_input_format": "basic",
}


def split_statements(sql: str) -> list[str]:
    """Statements of an init script: each ends with `;` at the end of a line.

    The HTTP interface takes one statement per request (as real ClickHouse does), while
    Docker's entrypoint feeds the whole file to `clickhouse-client --multiquery`; this split is
    what lets one file serve both. Whole-line comments are left out; pieces that are only
    comments are dropped.
    """
    statements = []
    for piece in re.split(r";[ \t]*(?:\r?\n|$)", sql):
        code = "\n".join(line for line in piece.splitlines()
                         if line.strip() and not line.strip().startswith("--"))
        if code:
            statements.append(code)
    return statements


def run_init_sql(client: Client, folder: Path = CLICKHOUSE_INIT_DIR) -> int:
    """Run every init script of `folder` (idempotent: IF NOT EXISTS); returns statements run."""
    count = 0
    for script in init_sql_files(folder):
        for statement in split_statements(script.read_text(encoding="utf-8")):
            try:
                client.command(statement)
            except ClickHouseError as exc:
                raise LoadError(f"{script}: ClickHouse rejected a statement: {exc}") from None
            count += 1
    return count


class Staging:
    """Tables filled next to the live ones and swapped in together by `publish()`.

    Use as a context manager: on exit the staging tables are dropped, holding either the new
    rows (nothing was published) or, after `publish()`, the previous rows.
    """

    def __init__(self, client: Client, database: str = RAW_DB) -> None:
        self.client = client
        self.database = database
        self.tables: list[str] = []

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for table in self.tables:
            self.client.command(f"DROP TABLE IF EXISTS {self.staged(table)}")

    def live(self, table: str) -> str:
        return f"{self.database}.{table}"

    def staged(self, table: str) -> str:
        return f"{self.database}.{STAGING_PREFIX}{table}"

    def create(self, table: str) -> str:
        """An empty copy of `table`'s definition (engine, keys, partitions); returns its name."""
        # A leftover from a load that was killed half-way is dropped first.
        self.client.command(f"DROP TABLE IF EXISTS {self.staged(table)}")
        self.client.command(f"CREATE TABLE {self.staged(table)} AS {self.live(table)}")
        self.tables.append(table)
        return self.staged(table)

    def publish(self) -> None:
        """Swap every staged table with its live table (each swap is atomic)."""
        for table in self.tables:
            self.client.command(f"EXCHANGE TABLES {self.staged(table)} AND {self.live(table)}")


def file_blocks(path: Path) -> Iterator[bytes]:
    """The file in 4 MiB pieces: the insert streams, so memory stays flat at any size."""
    with open(path, "rb") as f:
        while block := f.read(READ_BYTES):
            yield block


def stage_csv(client: Client, staging: Staging, path: Path, spec: DataFile,
              table: str | None = None, settings: dict[str, object] | None = None) -> None:
    """Insert a validated CSV file into the staging copy of `raw.<table>` (default: the
    file's own table), read with `settings` (default: CSV_SETTINGS)."""
    target = staging.create(table or spec.table)
    try:
        client.raw_insert(target, read_header(path), insert_block=file_blocks(path),
                          settings=settings or CSV_SETTINGS, fmt="CSVWithNames")
    except ClickHouseError as exc:
        # The first line says what and where ("... (at row 4)"); the rest is a dump of rows.
        first = str(exc).strip().splitlines()[0]
        row = re.search(r"\(at row (\d+)\)", first)
        where = f" line {int(row.group(1)) + 1}:" if row else ""  # data row n is line n + 1
        raise LoadError(f"{path}:{where} ClickHouse rejected the file: {first}") from None


def stage_raw_tables(client: Client, staging: Staging, data_dir: Path,
                     files: tuple[DataFile, ...] = RAW_FILES) -> None:
    """Stage every raw CSV file of a (validated) data set; publish with `staging.publish()`."""
    for spec in files:
        stage_csv(client, staging, data_dir / spec.path, spec)


def table_counts(client: Client, tables: list[str]) -> dict[str, int]:
    """Row counts of `database.table` names."""
    return {t: int(client.command(f"SELECT count() FROM {t}")) for t in tables}


def drop_databases(client: Client, names: list[str]) -> None:
    """Drop databases if they exist (SYNC: their names are free again right away)."""
    for name in names:
        client.command(f"DROP DATABASE IF EXISTS {name} SYNC")
