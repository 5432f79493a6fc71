"""The one place that opens connections to the stack: ClickHouse, PostgreSQL and `%sql`.

Every caller (the CLI, the loaders, the DAGs, the exercise checks, the notebooks) builds its
clients here, from the same settings, so a changed port or password reaches all of them.
"""

from __future__ import annotations

from urllib.parse import quote

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from .settings import Settings, load_settings
from .stack import ServiceError


def clickhouse(settings: Settings | None = None, **kwargs) -> Client:
    """A clickhouse-connect client for the configured server (`kwargs` go to get_client)."""
    settings = settings or load_settings()
    try:
        return clickhouse_connect.get_client(
            host=settings.clickhouse_host, port=settings.clickhouse_port,
            username=settings.clickhouse_user, password=settings.clickhouse_password, **kwargs)
    except clickhouse_connect.driver.exceptions.OperationalError as exc:
        raise ServiceError(f"cannot reach ClickHouse at {settings.clickhouse_url}: {exc}. "
                           "Start it with `course up`.") from None


def sql_magic_url(settings: Settings | None = None) -> str:
    """The SQLAlchemy URL that connects jupysql's `%sql` to the same ClickHouse server."""
    settings = settings or load_settings()
    return (f"clickhousedb://{quote(settings.clickhouse_user, safe='')}:"
            f"{quote(settings.clickhouse_password, safe='')}@{settings.clickhouse_host}:"
            f"{settings.clickhouse_port}/default")
