"""Docker mode: the same services from `stack/compose.yaml`, driven by `docker compose`."""

from __future__ import annotations

import json
import os
import subprocess

from ..settings import PROJECT_ROOT, Settings
from .process import ServiceError, ServiceStatus

COMPOSE_FILE = PROJECT_ROOT / "stack" / "compose.yaml"
# Our service names to the compose services that make them up.
COMPOSE_SERVICES = {
    "clickhouse": ["clickhouse"],
    "postgres": ["postgres"],
    "airflow": ["airflow-postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler",
                "airflow-dag-processor", "airflow-triggerer"],
    "jupyter": ["jupyter"],
}


def engine_answers(timeout: float = 5.0) -> bool:
    """True when a Docker engine answers `docker info`."""
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                                capture_output=True, text=True, timeout=timeout)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


class DockerStack:
    """`docker compose` with the project's compose file and the settings as its environment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def compose(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
        if not engine_answers():
            raise ServiceError(
                "no Docker engine answers (`docker info` failed). Start Docker Desktop or the "
                "docker service, or use the embedded stack: `course up --mode embedded`")
        cmd = ["docker", "compose", "-f", str(COMPOSE_FILE), "--project-directory",
               str(PROJECT_ROOT), *args]
        env = {**os.environ, **self.settings.client_env()}
        return subprocess.run(cmd, env=env, text=True, capture_output=capture)

    def expand(self, services: list[str]) -> list[str]:
        names: list[str] = []
        for service in services:
            names += COMPOSE_SERVICES[service]
        return names

    def up(self, services: list[str]) -> list[str]:
        profiles = ["--profile", "jupyter"] if "jupyter" in services else []
        result = self.compose(*profiles, "up", "--detach", "--wait", *self.expand(services))
        if result.returncode != 0:
            raise ServiceError("`docker compose up` failed; see its output above, and "
                               "`course logs SERVICE --mode docker`")
        return [f"{s}: up (docker)" for s in services]

    def down(self, services: list[str], purge: bool) -> list[str]:
        if purge:
            result = self.compose("down", "--volumes")
        else:
            result = self.compose("stop", *self.expand(services))
        if result.returncode != 0:
            raise ServiceError("`docker compose` failed; see its output above")
        return [f"{s}: stopped (docker)" for s in services]

    def status(self, services: list[str]) -> list[ServiceStatus]:
        result = self.compose("ps", "--all", "--format", "json", capture=True)
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        state = {r.get("Service"): r.get("State") for r in rows}
        return [ServiceStatus(s, all(state.get(c) == "running" for c in COMPOSE_SERVICES[s]
                                     if c != "airflow-init"), None, "docker", None, 0)
                for s in services]

    def logs(self, service: str, lines: int, follow: bool) -> int:
        args = ["logs", "--tail", str(lines), *(["--follow"] if follow else [])]
        return self.compose(*args, *self.expand([service])).returncode
