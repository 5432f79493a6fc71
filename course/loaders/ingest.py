"""PostgreSQL data in ClickHouse, the two ways the lessons compare.

Federated: the database `pg_source` (engine PostgreSQL) shows the source tables live; every
query goes to PostgreSQL. Ingested: `raw.pg_*` MergeTree tables hold a copy that ClickHouse
pulls itself with `INSERT ... SELECT ... FROM pg_source.<table>`, incrementally:

- user_activities is append-only, so new rows are those with an id above the newest ingested
  id. (A transaction that commits a lower id after a higher one was ingested is missed: the
  classic limit of id watermarks.)
- inventory and payment_transactions change in place, so new rows are those with updated_at
  above the newest ingested updated_at; a changed row arrives again as a new version, and
  ReplacingMergeTree(updated_at) keeps the newest per key (query with FINAL). This relies on
  every UPDATE setting updated_at, and misses a change committed later with an older stamp.

Both watermarks are read from ClickHouse first and sent as literals, so ClickHouse can pass
the condition down to PostgreSQL and only the new rows travel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from ..settings import Settings
from .clickhouse import CSV_SETTINGS, Staging, stage_csv
from .errors import LoadError
from .schema import PG_SOURCE_DB, RAW_DB, SOURCE_FILES

# The source files read straight into raw.pg_* the way ClickHouse would receive the same values
# from PostgreSQL (see `stage_source_copies`): timestamps with their offset (Z, +05, -03:30)
# converted to UTC, and no text taken for NULL but the empty value, which becomes '' as
# coalesce(page, '') makes it (PostgreSQL's CSV reads \N as text, so must we).
SOURCE_CSV_SETTINGS = {
    **CSV_SETTINGS,
    "date_time_input_format": "best_effort",
    "format_csv_null_representation": "",
}

# ClickHouse in the Docker stack reaches PostgreSQL by its compose service name and container
# port, not by the host's address and published port that our settings hold.
DOCKER_POSTGRES = ("postgres", 5432)


@dataclass(frozen=True)
class Ingested:
    """One source table and its ingested copy `raw.pg_<table>`."""

    table: str
    watermark: str  # the column that tells new rows: an increasing id, or updated_at
    select: str  # the columns, as ClickHouse types (docs/data-contract.md)

    @property
    def target(self) -> str:
        return f"{RAW_DB}.pg_{self.table}"

    @property
    def by_time(self) -> bool:
        return self.watermark == "updated_at"


INGESTED = (
    # `page` may be NULL in PostgreSQL and is String in the contract; the course data always
    # has a page, and coalesce() makes the (documented) mapping explicit.
    Ingested("user_activities", "activity_id",
             "activity_id, customer_id, activity_type, coalesce(page, '') AS page, occurred_at"),
    Ingested("inventory", "updated_at", "product_id, warehouse, quantity_on_hand, updated_at"),
    Ingested("payment_transactions", "updated_at",
             "payment_id, order_id, amount, method, status, created_at, updated_at"),
)


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def postgres_address(settings: Settings) -> tuple[str, int]:
    """Where ClickHouse itself reaches PostgreSQL: our settings in embedded mode (both run on
    this machine), the compose service in Docker mode."""
    mode = settings.mode
    if mode == "auto":
        from ..stack.docker import engine_answers

        mode = "docker" if engine_answers(timeout=3) else "embedded"
    if mode == "docker":
        return DOCKER_POSTGRES
    return settings.postgres_host, settings.postgres_port


def create_pg_source(client: Client, settings: Settings, replace: bool = True) -> None:
    """(Re)create the federated database `pg_source` from the current settings.

    It is built at load time because PostgreSQL's address differs per mode; `replace` drops an
    existing one first, so a changed password or port is picked up.
    """
    host, port = postgres_address(settings)
    if replace:
        client.command(f"DROP DATABASE IF EXISTS {PG_SOURCE_DB} SYNC")
    args = ", ".join(quote(v) for v in (f"{host}:{port}", settings.postgres_db,
                                        settings.postgres_user, settings.postgres_password))
    try:
        client.command(f"CREATE DATABASE IF NOT EXISTS {PG_SOURCE_DB} ENGINE = PostgreSQL({args})")
    except ClickHouseError as exc:
        raise LoadError(f"cannot create {PG_SOURCE_DB} (PostgreSQL at {host}:{port} as seen "
                        f"from ClickHouse): {exc}") from None


def watermark(client: Client, table: Ingested) -> str:
    """The newest id or updated_at already ingested, as a ClickHouse literal (0 / 1970 when
    the table is empty, which lets every source row in)."""
    if table.by_time:
        newest = client.command(f"SELECT toString(max(updated_at)) FROM {table.target}")
        return f"toDateTime64({quote(str(newest))}, 6, 'UTC')"
    return str(int(client.command(f"SELECT max({table.watermark}) FROM {table.target}")))


def ingest_table(client: Client, table: Ingested, into: str | None = None) -> int:
    """Copy the source rows newer than the watermark of `into` (default: the ingested table);
    returns how many arrived."""
    into = into or table.target
    mark = watermark(client, table) if into == table.target else None
    where = f" WHERE {table.watermark} > {mark}" if mark else ""
    try:
        client.command(f"INSERT INTO {into} SELECT {table.select} "
                       f"FROM {PG_SOURCE_DB}.{table.table}{where}")
    except ClickHouseError as exc:
        raise LoadError(f"ingesting {table.table} from PostgreSQL failed: {exc}") from None
    return int(client.command(f"SELECT count() FROM {into}{where}"))


def ingest_postgres(client: Client, settings: Settings, full: bool = False) -> dict[str, int]:
    """Pull new source rows into `raw.pg_*`; returns new rows per ingested table.

    Incremental by default: only rows beyond each table's watermark, so running it again
    brings nothing twice. `full=True` rebuilds the ingested tables from scratch (staged, then
    swapped in), as a load of a new data set needs: its ids start over.
    """
    if not int(client.command(f"SELECT count() FROM system.databases "
                              f"WHERE name = {quote(PG_SOURCE_DB)}")):
        create_pg_source(client, settings, replace=False)
    if not full:
        return {t.target: ingest_table(client, t) for t in INGESTED}
    with Staging(client) as staging:
        counts = {t.target: ingest_table(client, t, into=staging.create(f"pg_{t.table}"))
                  for t in INGESTED}
        staging.publish()
    return counts


def stage_source_copies(client: Client, staging: Staging, data_dir: Path) -> None:
    """Stage the full `raw.pg_*` copies straight from the (validated) source CSV files.

    Used by `load_all` instead of a full `ingest_postgres`: the load replaces the source
    tables' rows with exactly these files (TRUNCATE and COPY in one transaction, published
    together with these staging tables), so pulling them back out of PostgreSQL would bring
    the very same rows, only slower (bounded by PostgreSQL's read speed). The values match
    too: validation admits only text both servers read alike, and SOURCE_CSV_SETTINGS maps
    what PostgreSQL's COPY and the SELECT of `Ingested` do (offsets to UTC, empty page to '').
    tests/test_loaders.py compares both ways on tricky values. The incremental `ingest()`
    still pulls from PostgreSQL, and its watermarks work on these copies as on pulled ones.
    """
    files = {spec.table: spec for spec in SOURCE_FILES}
    for table in INGESTED:
        spec = files[table.table]
        stage_csv(client, staging, data_dir / spec.path, spec, table=f"pg_{table.table}",
                  settings=SOURCE_CSV_SETTINGS)
