"""`course load` and `course reset`: the CLI's side of the loaders (printing, exit codes)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..settings import Settings
from .errors import LoadError
from .pipeline import LoadResult, load_all, reset
from .schema import DATA_DIR, DBT_DATABASES, PG_SOURCE_DB, RAW_DB


def print_result(result: LoadResult, started: float) -> None:
    print(f"validated {len(result.files)} files ({sum(result.files.values()):,} rows)")
    for table, rows in result.tables().items():
        print(f"  {table:<32}{rows:>12,}")
    print(f"loaded in {time.monotonic() - started:.1f} s")


def run_load(settings: Settings, data_dir: Path | None) -> int:
    """Load a data set; a bad file prints its file, line and column and exits 1."""
    started = time.monotonic()
    try:
        result = load_all(settings, data_dir or DATA_DIR)
    except LoadError as exc:
        print(f"error: {exc}\nnothing was loaded", file=sys.stderr)
        return 1
    print_result(result, started)
    return 0


def run_reset(settings: Settings, yes: bool) -> int:
    """Drop the course's databases and source tables, then load the sample data."""
    databases = ", ".join([RAW_DB, PG_SOURCE_DB, *DBT_DATABASES])
    if not yes:
        try:
            answer = input(f"Drop the ClickHouse databases {databases} and the PostgreSQL "
                           "source tables, then reload the sample data? Your files are kept. "
                           "[y/N] ")
        except EOFError:  # no terminal to answer from: the answer is no
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing dropped (pass --yes to skip the question)")
            return 1
    started = time.monotonic()
    try:
        result = reset(settings)
    except LoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"dropped {databases} and the source tables")
    print_result(result, started)
    return 0
