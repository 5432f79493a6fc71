"""What the DAGs do, as plain functions: the DAG files only wire them together.

Tasks read the stack's addresses from the Airflow connections `clickhouse_default` and
`postgres_source`, which `course` sets from the same settings as everything else
(AIRFLOW_CONN_* variables), so the DAGs run unchanged in embedded and Docker mode.
"""

from __future__ import annotations

import dataclasses
import logging

import clickhouse_connect
import psycopg

from .settings import Settings, load_settings

log = logging.getLogger(__name__)

CLICKHOUSE_CONN_ID = "clickhouse_default"
POSTGRES_CONN_ID = "postgres_source"


class PreflightError(RuntimeError):
    """A service the pipeline needs is not there; the message says how to bring it up."""


def settings_from_connections() -> Settings:
    """The course settings with ClickHouse and PostgreSQL taken from the Airflow connections."""
    from airflow.sdk import BaseHook

    base = load_settings()
    ch = BaseHook.get_connection(CLICKHOUSE_CONN_ID)
    pg = BaseHook.get_connection(POSTGRES_CONN_ID)
    return dataclasses.replace(
        base,
        clickhouse_host=ch.host, clickhouse_port=int(ch.port), clickhouse_user=ch.login,
        clickhouse_password=ch.password or "",
        postgres_host=pg.host, postgres_port=int(pg.port), postgres_user=pg.login,
        postgres_password=pg.password or "", postgres_db=pg.schema,
    )


def clickhouse_version(settings: Settings, timeout: int = 3) -> str:
    """ClickHouse's version, or a PreflightError that says how to start it."""
    try:
        client = clickhouse_connect.get_client(
            host=settings.clickhouse_host, port=settings.clickhouse_port,
            username=settings.clickhouse_user, password=settings.clickhouse_password,
            connect_timeout=timeout, send_receive_timeout=30)
        return client.command("SELECT version()")
    except Exception as exc:  # any client failure means the same to a learner
        raise PreflightError(
            f"ClickHouse at {settings.clickhouse_url} does not answer ({exc}). Start it with "
            "`course up`, then run the DAG again.") from None


def postgres_version(settings: Settings, timeout: int = 3) -> str:
    """PostgreSQL's version, or a PreflightError that says how to start it."""
    try:
        with psycopg.connect(settings.postgres_dsn(), connect_timeout=timeout) as conn:
            return conn.execute("SHOW server_version").fetchone()[0].split()[0]
    except psycopg.Error as exc:
        raise PreflightError(
            f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port} is not ready "
            f"({exc}). Start it with `course up`, then run the DAG again.") from None
