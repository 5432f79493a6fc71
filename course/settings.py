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
    "COURSE_MODE": "auto",
    "CLICKHOUSE_HOST": "127.0.0.1",
    "CLICKHOUSE_PORT": "8123",
    "CLICKHOUSE_USER": "default",
    "CLICKHOUSE_PASSWORD": "",
    "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_PORT": "5432",
    "POSTGRES_USER": "course",
    "POSTGRES_PASSWORD": "course",
    "POSTGRES_DB": "shop",
    "AIRFLOW_PORT": "8080",
}
MODES = ("embedded", "docker", "auto")


class SettingsError(ValueError):
    """A setting has a value the stack cannot use; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one stack."""

    home: Path
    mode: str
    clickhouse_host: str
    clickhouse_port: int
    clickhouse_user: str
    clickhouse_password: str
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
    postgres_db: str
    airflow_port: int

    @property
    def clickhouse_url(self) -> str:
        """Base URL of the ClickHouse HTTP interface."""
        return f"http://{self.clickhouse_host}:{self.clickhouse_port}"

    def postgres_dsn(self, database: str | None = None) -> str:
        """A libpq connection string for the source database (or `database`)."""
        return (f"host={self.postgres_host} port={self.postgres_port} "
                f"user={self.postgres_user} password={_libpq_quote(self.postgres_password)} "
                f"dbname={database or self.postgres_db}")

    def client_env(self) -> dict[str, str]:
        """These settings as environment variables, for child processes (dbt, kernels)."""
        return {
            "COURSE_HOME": str(self.home),
            "COURSE_MODE": self.mode,
            "CLICKHOUSE_HOST": self.clickhouse_host,
            "CLICKHOUSE_PORT": str(self.clickhouse_port),
            "CLICKHOUSE_USER": self.clickhouse_user,
            "CLICKHOUSE_PASSWORD": self.clickhouse_password,
            "POSTGRES_HOST": self.postgres_host,
            "POSTGRES_PORT": str(self.postgres_port),
            "POSTGRES_USER": self.postgres_user,
            "POSTGRES_PASSWORD": self.postgres_password,
            "POSTGRES_DB": self.postgres_db,
            "AIRFLOW_PORT": str(self.airflow_port),
        }


def _libpq_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
    for name in ("CLICKHOUSE_USER", "POSTGRES_USER", "POSTGRES_DB"):
        if not get(name):
            raise SettingsError(f"{name} is empty; set it (the default is {DEFAULTS[name]!r})")
    mode = get("COURSE_MODE").lower()
    if mode not in MODES:
        raise SettingsError(f"COURSE_MODE={mode!r} is not one of {', '.join(MODES)}")
    return Settings(
        home=home,
        mode=mode,
        clickhouse_host=get("CLICKHOUSE_HOST"),
        clickhouse_port=_port("CLICKHOUSE_PORT", get("CLICKHOUSE_PORT")),
        clickhouse_user=get("CLICKHOUSE_USER"),
        clickhouse_password=get("CLICKHOUSE_PASSWORD"),
        postgres_host=get("POSTGRES_HOST"),
        postgres_port=_port("POSTGRES_PORT", get("POSTGRES_PORT")),
        postgres_user=get("POSTGRES_USER"),
        postgres_password=get("POSTGRES_PASSWORD"),
        postgres_db=get("POSTGRES_DB"),
        airflow_port=_port("AIRFLOW_PORT", get("AIRFLOW_PORT")),
    )
