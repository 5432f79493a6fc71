"""The embedded ClickHouse service: `python -m course.embedded_clickhouse` in the background."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from base64 import b64encode

from ..settings import is_loopback
from .process import BackgroundService, ServiceError


class EmbeddedClickHouse(BackgroundService):
    """chDB served over the ClickHouse HTTP interface."""

    name = "clickhouse"
    product = "ClickHouse"
    port_variable = "CLICKHOUSE_PORT"
    module = "course.embedded_clickhouse"

    @property
    def host(self) -> str:
        return self.settings.clickhouse_host

    @property
    def port(self) -> int:
        return self.settings.clickhouse_port

    @property
    def address(self) -> str:
        return self.settings.clickhouse_url

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module]

    def is_ours(self, cmdline: list[str]) -> bool:
        return self.module in cmdline

    def checks(self) -> None:
        s = self.settings
        if not is_loopback(s.clickhouse_host) and not s.clickhouse_password:
            raise ServiceError(
                f"refusing to serve ClickHouse on {s.clickhouse_host} without a password: set "
                "CLICKHOUSE_PASSWORD in .env, or CLICKHOUSE_HOST=127.0.0.1")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/ping", timeout=1) as resp:
                return resp.read().startswith(b"Ok.")
        except (urllib.error.URLError, OSError):
            return False

    def version(self) -> str:
        return self.request("SELECT version()").strip()

    def request(self, sql: str, timeout: float = 5.0) -> str:
        """Run `sql` over HTTP with the configured credentials; raises ServiceError on failure."""
        s = self.settings
        req = urllib.request.Request(
            f"{s.clickhouse_url}/", data=sql.encode(), method="POST",
            headers={"Authorization": "Basic " + b64encode(
                f"{s.clickhouse_user}:{s.clickhouse_password}".encode()).decode()})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace").strip()
            if exc.code in (401, 403):
                raise ServiceError(
                    f"ClickHouse at {s.clickhouse_url} rejects the configured user or password "
                    f"({body.splitlines()[0] if body else exc.code}). It was started with other "
                    "settings: run `course down clickhouse` then `course up clickhouse`, or fix "
                    "CLICKHOUSE_USER / CLICKHOUSE_PASSWORD in .env") from None
            raise ServiceError(f"ClickHouse answered {exc.code}: {body}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ServiceError(f"ClickHouse at {s.clickhouse_url} does not answer: {exc}") from None
