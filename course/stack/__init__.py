"""The stack's services: embedded servers run by us, or the Docker Compose stack."""

from .clickhouse import EmbeddedClickHouse
from .postgres import EmbeddedPostgres
from .process import BackgroundService, ServiceError, ServiceStatus

__all__ = ["BackgroundService", "EmbeddedClickHouse", "EmbeddedPostgres", "ServiceError",
           "ServiceStatus"]
