"""Load the course's data: CSV files into ClickHouse, the PostgreSQL source, and both ways
PostgreSQL data reaches ClickHouse (federated `pg_source`, ingested `raw.pg_*`).

From a notebook::

    from course.loaders import load_all, ingest, reset
    result = load_all()          # the sample data in data/; load_all(data_dir=...) for another
    ingest()                     # pull new PostgreSQL rows into raw.pg_* (incremental)
    load_csv_files()             # only the CSV files into raw.* (what a daily DAG reloads)

Bad files raise LoadError naming the file, line and column; nothing is loaded then.
"""

from .errors import LoadError
from .ingest import create_pg_source, ingest_postgres
from .pipeline import (
    LoadResult,
    connect_clickhouse,
    ingest,
    load_all,
    load_csv_files,
    reset,
)
from .schema import (
    ALL_FILES,
    DATA_DIR,
    DBT_DATABASES,
    PG_SOURCE_DB,
    RAW_DB,
    RAW_FILES,
    SOURCE_FILES,
)
from .validate import validate_dataset

__all__ = [
    "ALL_FILES", "DATA_DIR", "DBT_DATABASES", "PG_SOURCE_DB", "RAW_DB", "RAW_FILES",
    "SOURCE_FILES", "LoadError", "LoadResult", "connect_clickhouse", "create_pg_source",
    "ingest", "ingest_postgres", "load_all", "load_csv_files", "reset", "validate_dataset",
]
