"""One place for every setting: environment variables, falling back to `.env`, then defaults.

Every client of the stack (the CLI, notebooks, dbt's profiles.yml, the DAGs) reads the same
names, so switching between the embedded and the Docker stack changes nothing else.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, str] = {
    "COURSE_HOME": ".stack",
    "CLICKHOUSE_HOST": "127.0.0.1",
    "CLICKHOUSE_PORT": "8123",
    "CLICKHOUSE_USER": "default",
    "CLICKHOUSE_PASSWORD": "",
}


class SettingsError(ValueError):
    """A setting has a value the stack cannot use; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one stack."""

    home: Path
    clickhouse_host: str
    clickhouse_port: int
    clickhouse_user: str
    clickhouse_password: str

    @property
    def clickhouse_url(self) -> str:
        """Base URL of the ClickHouse HTTP interface."""
        return f"http://{self.clickhouse_host}:{self.clickhouse_port}"

    def client_env(self) -> dict[str, str]:
        """These settings as environment variables, for child processes (dbt, kernels)."""
        return {
            "COURSE_HOME": str(self.home),
            "CLICKHOUSE_HOST": self.clickhouse_host,
            "CLICKHOUSE_PORT": str(self.clickhouse_port),
            "CLICKHOUSE_USER": self.clickhouse_user,
            "CLICKHOUSE_PASSWORD": self.clickhouse_password,
        }


def _port(name: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise SettingsError(f"{name}={raw!r} is not a TCP port; set it to a number from 1 to 65535")
    return port


def is_loopback(host: str) -> bool:
    """True when `host` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(env: dict[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Resolve settings: `env` (default: the process environment) wins over `.env`, then defaults.

    A relative COURSE_HOME is taken relative to the project root, so every tool started from
    any folder finds the same state folder.
    """
    environ = os.environ if env is None else env
    file_path = env_file if env_file is not None else PROJECT_ROOT / ".env"
    from_file = {k: v for k, v in dotenv_values(file_path).items() if v is not None}

    def get(name: str) -> str:
        if name in environ:
            return environ[name]
        return from_file.get(name, DEFAULTS[name])

    home = Path(get("COURSE_HOME")).expanduser()
    if not home.is_absolute():
        home = PROJECT_ROOT / home
    user = get("CLICKHOUSE_USER")
    if not user:
        raise SettingsError("CLICKHOUSE_USER is empty; set it (the default is 'default')")
    return Settings(
        home=home,
        clickhouse_host=get("CLICKHOUSE_HOST"),
        clickhouse_port=_port("CLICKHOUSE_PORT", get("CLICKHOUSE_PORT")),
        clickhouse_user=user,
        clickhouse_password=get("CLICKHOUSE_PASSWORD"),
    )
