"""Airflow on demand: `airflow standalone` with its home, metadata and logs in the state folder.

Standalone runs the API server (with the UI), scheduler, DAG processor and triggerer in one
process group, on SQLite. Its login is generated on first start, kept in the state folder,
and shown by `course status`; the connections to ClickHouse and PostgreSQL come from the
course settings as AIRFLOW_CONN_* variables, so nobody clicks them together in the UI.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ..settings import PROJECT_ROOT, Settings
from .process import BackgroundService, ServiceError

DAGS_FOLDER = PROJECT_ROOT / "airflow" / "dags"
ADMIN_USER = "admin"


def airflow_environment(settings: Settings) -> dict[str, str]:
    """Airflow's configuration as environment variables, shared by standalone and dag.test()."""
    home = settings.home / "airflow"
    ch_conn = {
        "conn_type": "generic", "host": settings.clickhouse_host, "port": settings.clickhouse_port,
        "login": settings.clickhouse_user, "password": settings.clickhouse_password,
        "schema": "default", "extra": {"protocol": "http"},
    }
    pg_conn = {
        "conn_type": "postgres", "host": settings.postgres_host, "port": settings.postgres_port,
        "login": settings.postgres_user, "password": settings.postgres_password,
        "schema": settings.postgres_db,
    }
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",  # a laptop: a few tasks at a time
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL":
            f"http://127.0.0.1:{settings.airflow_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{settings.airflow_port}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__COSMOS__CACHE_DIR": str(settings.home / "cosmos"),
        "AIRFLOW_CONN_CLICKHOUSE_DEFAULT": json.dumps(ch_conn),
        "AIRFLOW_CONN_POSTGRES_SOURCE": json.dumps(pg_conn),
    }


def airflow_process_env(settings: Settings) -> dict[str, str]:
    """The whole environment of an Airflow process (standalone, or a dag.test() child)."""
    env = {**os.environ, **settings.client_env(), **airflow_environment(settings)}
    # Airflow starts its parts as `airflow ...` by name: the venv's bin must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class AirflowStandalone(BackgroundService):
    """`airflow standalone` on 127.0.0.1:AIRFLOW_PORT."""

    name = "airflow"
    product = "Airflow"
    port_variable = "AIRFLOW_PORT"
    start_timeout = 300.0  # the first start migrates the metadata database

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.settings.airflow_port

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def passwords_file(self) -> Path:
        return self.data_dir / "passwords.json"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "airflow", "standalone"]

    def is_ours(self, cmdline: list[str]) -> bool:
        return "airflow" in " ".join(cmdline) and "standalone" in cmdline

    def environment(self) -> dict[str, str]:
        return {**airflow_process_env(self.settings), "PYTHONUNBUFFERED": "1"}

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        DAGS_FOLDER.mkdir(parents=True, exist_ok=True)
        # Cosmos renders the dbt project from its manifest: parse it now so that DAG parsing
        # in the scheduler runs no dbt at all.
        from ..dbt_tools import parse_manifest

        print(f"{self.name}: parsing the dbt project for Cosmos (dbt parse)")
        parse_manifest(self.settings)
        if not self.passwords_file.exists():
            # Our own random login, not a fixed default; `course status` shows it.
            self.passwords_file.write_text(json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}))
            self.passwords_file.chmod(0o600)

    def login(self) -> str:
        try:
            password = json.loads(self.passwords_file.read_text())[ADMIN_USER]
        except (FileNotFoundError, KeyError, ValueError):
            return ""
        return f"user {ADMIN_USER}, password {password}"

    def health(self) -> dict:
        try:
            with urllib.request.urlopen(f"{self.address}/api/v2/monitor/health", timeout=2) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError):
            return {}

    def ready(self) -> bool:
        health = self.health()
        return all(health.get(part, {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler"))

    def version(self) -> str:
        try:
            with urllib.request.urlopen(f"{self.address}/api/v2/version", timeout=2) as r:
                return json.loads(r.read()).get("version", "?")
        except urllib.error.HTTPError:
            # The version endpoint needs a login; the health check does not.
            import airflow

            if self.health():
                return airflow.__version__
            raise ServiceError(f"Airflow at {self.address} is not healthy") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ServiceError(f"Airflow at {self.address} does not answer: {exc}") from None

    def status(self):
        status = super().status()
        if status.running:
            status.detail = f"login: {self.login()}"
        return status
