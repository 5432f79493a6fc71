"""What every lesson notebook starts with: the settings, clients, `%sql`, and the state the
lesson builds on.

A lesson never relies on what an earlier notebook left in the kernel, only on what the stack
holds, and each `ensure_*` call creates that state when it is missing. So any lesson runs on
its own (`course run 05`), and twice in a row::

    from course import lesson
    ch = lesson.connect()          # clickhouse-connect client
    lesson.sql_magic()             # %sql talks to the same server
    lesson.ensure_marts()          # sample data loaded and the dbt project built
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
from clickhouse_connect.driver.client import Client

from . import clients
from .exercises import check
from .settings import Settings, load_settings

__all__ = ["check", "connect", "course", "ensure_marts", "ensure_raw_data", "ensure_stack",
           "settings", "sql_magic", "table_rows"]


def settings() -> Settings:
    """The course settings (environment, then .env, then defaults)."""
    return load_settings()


def course(*args: str, check: bool = True) -> None:
    """Run the `course` command as in a terminal (`course("status")`) and show its output;
    raises when it fails, unless `check=False`."""
    proc = subprocess.run([sys.executable, "-m", "course.cli", *args], capture_output=True,
                          text=True)
    print((proc.stdout + proc.stderr).rstrip())
    if check and proc.returncode != 0:
        raise RuntimeError(f"`course {' '.join(args)}` exited {proc.returncode}")


def connect(**kwargs) -> Client:
    """A clickhouse-connect client for the course's ClickHouse server."""
    return clients.clickhouse(load_settings(), **kwargs)


def sql_magic() -> None:
    """Load jupysql and connect `%sql` / `%%sql` to the course's ClickHouse server.

    Results come back as pandas DataFrames, and jupysql's per-query chatter is off so cell
    outputs show only the result.
    """
    from IPython import get_ipython
    from IPython.utils.capture import capture_output

    ip = get_ipython()
    if ip is None:
        raise RuntimeError("sql_magic() works inside Jupyter (an IPython kernel)")
    # Loading prints a tip about config files; the settings below are all the lessons need.
    with capture_output():
        ip.run_line_magic("load_ext", "sql")
    ip.run_line_magic("config", "SqlMagic.autopandas = True")
    ip.run_line_magic("config", "SqlMagic.displaycon = False")
    ip.run_line_magic("config", "SqlMagic.feedback = 0")
    ip.run_line_magic("sql", f"{clients.sql_magic_url(load_settings())} --alias course")


def ensure_stack() -> None:
    """Start ClickHouse and PostgreSQL unless they already run (quiet when they do)."""
    from .cli import start_core_services

    start_core_services(None, load_settings())


def table_rows(table: str, client: Client | None = None) -> int:
    """Rows in `database.table`, 0 when it does not exist."""
    database, name = table.split(".")
    client = client or connect()
    rows = client.command("SELECT ifNull(sum(total_rows), 0) FROM system.tables "
                          f"WHERE database = '{database}' AND name = '{name}'")
    return int(rows)


def ensure_raw_data() -> None:
    """Load the sample data set (CSV files and the PostgreSQL source) unless it is loaded."""
    from .loaders import load_all

    ensure_stack()
    if table_rows("raw.orders") == 0 or table_rows("raw.pg_payment_transactions") == 0:
        result = load_all(load_settings())
        print(f"loaded the sample data: {sum(result.tables.values())} rows")


def ensure_marts() -> None:
    """Load the sample data and build the dbt project unless the marts exist."""
    from .dbt_tools import run_dbt

    ensure_raw_data()
    marts = ("marts.fct_orders", "marts.dim_customers", "marts.daily_sales_summary")
    if any(table_rows(t) == 0 for t in marts):
        run_dbt(["build", "--quiet"], load_settings(), check=True)
        print("built the dbt project (dbt build)")


def frame(sql: str, client: Client | None = None) -> pd.DataFrame:
    """The result of `sql` as a DataFrame."""
    return (client or connect()).query_df(sql)
