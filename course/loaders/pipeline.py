"""The whole load, and `reset`: the functions the CLI and the notebooks call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from clickhouse_connect.driver.client import Client

from ..clients import clickhouse as clickhouse_client
from ..settings import Settings, load_settings
from . import postgres
from .clickhouse import Staging, drop_databases, run_init_sql, stage_raw_tables, table_counts
from .ingest import INGESTED, create_pg_source, ingest_postgres, stage_source_copies
from .schema import DATA_DIR, DBT_DATABASES, PG_SOURCE_DB, RAW_DB, RAW_FILES
from .validate import validate_dataset


@dataclass
class LoadResult:
    """Row counts after a load, per table."""

    files: dict[str, int] = field(default_factory=dict)  # data rows per validated file
    raw: dict[str, int] = field(default_factory=dict)  # raw.<table> from the CSV files
    source: dict[str, int] = field(default_factory=dict)  # PostgreSQL source tables
    ingested: dict[str, int] = field(default_factory=dict)  # rows pulled into raw.pg_<table>
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step of the load

    def tables(self) -> dict[str, int]:
        """Every table's count: `raw.*` and `raw.pg_*` in ClickHouse, `postgres.*` sources."""
        return {**self.raw, **{f"postgres.{t}": n for t, n in self.source.items()},
                **self.ingested}


@contextmanager
def timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[step] = time.perf_counter() - started


def timed_call(seconds: dict[str, float], step: str, work: Callable[[], object]) -> object:
    with timed(seconds, step):
        return work()


def connect_clickhouse(settings: Settings | None = None) -> Client:
    """A clickhouse-connect client for the configured stack."""
    return clickhouse_client(settings or load_settings())


def load_all(settings: Settings | None = None, data_dir: Path | str = DATA_DIR) -> LoadResult:
    """Load a data set (default: the course's sample in `data/`) into the stack.

    1. Validate every file completely; a bad file raises LoadError and nothing changes.
    2. Create the ClickHouse raw tables and the PostgreSQL source tables (init SQL).
    3. In one PostgreSQL transaction, seed the source tables (COPY, in a thread) while
       ClickHouse stages the CSV files next to the raw tables, and the source files next to
       the ingested `raw.pg_*` tables (the same rows a full ingestion would pull back out of
       PostgreSQL, see `stage_source_copies`); once both sides succeeded, swap every staged
       table in, then commit.
    4. Recreate the federated `pg_source` database.

    A failure on either side leaves both as they were. Loading the same data set again gives
    the same rows: nothing is ever appended twice.
    """
    settings = settings or load_settings()
    data_dir = Path(data_dir)
    result = LoadResult()
    steps = result.seconds
    with timed(steps, "validate"):
        result.files = validate_dataset(data_dir)
    client = connect_clickhouse(settings)
    run_init_sql(client)
    with postgres.connect(settings) as conn, timed(steps, "load (both sides)"):
        postgres.create_source_schema(conn)
        with Staging(client) as staging, conn.transaction():
            # The COPY works in PostgreSQL's process and the inserts in ClickHouse's: they
            # overlap. Leaving the pool waits for the COPY, so the transaction's end (commit,
            # or rollback on any error) never races it.
            with ThreadPoolExecutor(1, thread_name_prefix="seed") as pool:
                seeding = pool.submit(timed_call, steps, "postgres COPY",
                                      lambda: postgres.seed_source_tables(conn, data_dir))
                try:
                    with timed(steps, "clickhouse raw.*"):
                        stage_raw_tables(client, staging, data_dir)
                    with timed(steps, "clickhouse raw.pg_*"):
                        stage_source_copies(client, staging, data_dir)
                except BaseException:
                    postgres.cancel(conn)  # no need to finish a COPY that rolls back
                    raise
                result.source = seeding.result()
            # Publishing last means a failed seed rolls back and leaves ClickHouse as it was
            # too.
            staging.publish()
    with timed(steps, "counts, pg_source"):
        result.raw = table_counts(client, [f"{RAW_DB}.{spec.table}" for spec in RAW_FILES])
        result.ingested = table_counts(client, [t.target for t in INGESTED])
        create_pg_source(client, settings)
    return result


def load_csv_files(settings: Settings | None = None,
                   data_dir: Path | str = DATA_DIR) -> dict[str, int]:
    """Load only the CSV files of `raw.*` (validated, staged, swapped in); rows per table.

    The PostgreSQL source and its ingested copies are left alone: a scheduled pipeline calls
    this, then `ingest()` for the new PostgreSQL rows. Reloading replaces, never appends.
    """
    settings = settings or load_settings()
    data_dir = Path(data_dir)
    validate_dataset(data_dir, RAW_FILES)
    client = connect_clickhouse(settings)
    run_init_sql(client)
    with Staging(client) as staging:
        stage_raw_tables(client, staging, data_dir)
        staging.publish()
    return table_counts(client, [f"{RAW_DB}.{spec.table}" for spec in RAW_FILES])


def ingest(settings: Settings | None = None) -> dict[str, int]:
    """Incremental ingestion from PostgreSQL into `raw.pg_*`: new rows per ingested table.

    Creates what is missing first (the raw tables, `pg_source`), so it also runs on its own.
    """
    settings = settings or load_settings()
    client = connect_clickhouse(settings)
    run_init_sql(client)
    return ingest_postgres(client, settings)


def reset(settings: Settings | None = None, data_dir: Path | str = DATA_DIR) -> LoadResult:
    """Start over: drop the course's ClickHouse databases (raw, pg_source and dbt's) and the
    PostgreSQL source tables, then load the sample data again.

    Only database objects are dropped; no file (notebooks, the dbt project, data/) is touched.
    The data set is validated before anything is dropped.
    """
    settings = settings or load_settings()
    validate_dataset(data_dir)
    client = connect_clickhouse(settings)
    drop_databases(client, [PG_SOURCE_DB, *DBT_DATABASES, RAW_DB])
    with postgres.connect(settings) as conn:
        postgres.drop_source_tables(conn)
    return load_all(settings, data_dir)
