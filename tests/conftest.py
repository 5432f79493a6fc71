"""One embedded stack per test session, on its own port and state folder.

The server is started the way a learner starts it (`course up clickhouse`), so the tests
cover the CLI too, and it never touches the learner's `.stack/` or port 8123.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest

from course.settings import Settings, load_settings
from course.stack.scratch import free_port, open_temp_folder

COURSE = [sys.executable, "-m", "course.cli"]
TEST_PASSWORD = "test-pass-\u00e9"  # non-ASCII on purpose: clients must encode it right




def stack_env(home: Path, port: int, password: str = TEST_PASSWORD,
              postgres_port: int | None = None) -> dict[str, str]:
    """Environment for a `course` process that manages a test stack."""
    return {**os.environ, "COURSE_HOME": str(home), "COURSE_MODE": "embedded",
            "CLICKHOUSE_HOST": "127.0.0.1", "CLICKHOUSE_PORT": str(port),
            "CLICKHOUSE_USER": "default", "CLICKHOUSE_PASSWORD": password,
            "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(postgres_port or free_port()),
            "POSTGRES_USER": "course_test", "POSTGRES_PASSWORD": "pg-" + password,
            "POSTGRES_DB": "shop_test", "AIRFLOW_PORT": str(free_port())}




def course(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the `course` CLI with `env`; output is captured for assertions."""
    proc = subprocess.run([*COURSE, *args], env=env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"course {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def stack_home() -> Iterator[Path]:
    home = open_temp_folder("course-test-stack-")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def stack_settings(stack_home: Path) -> Iterator[Settings]:
    """Settings of the session's embedded stack (ClickHouse and PostgreSQL), started once."""
    env = stack_env(stack_home, free_port())
    course(env, "up")
    yield load_settings(env=env)
    course(env, "down", check=False)


@pytest.fixture(scope="session")
def clickhouse_settings(stack_settings: Settings) -> Settings:
    """Settings of the session's stack, for tests that need only ClickHouse."""
    return stack_settings


@pytest.fixture(scope="session")
def clickhouse_env(clickhouse_settings: Settings) -> dict[str, str]:
    """The process environment plus the test server's settings, for child processes."""
    return {**os.environ, **clickhouse_settings.client_env()}


def make_client(settings: Settings, **kwargs):
    return clickhouse_connect.get_client(
        host=settings.clickhouse_host, port=settings.clickhouse_port,
        username=settings.clickhouse_user, password=settings.clickhouse_password, **kwargs)


@pytest.fixture(scope="session")
def ch_client(clickhouse_settings: Settings):
    """A clickhouse-connect client (HTTP) on the session's server."""
    client = make_client(clickhouse_settings)
    yield client
    client.close()


def restore_sample(settings: Settings) -> None:
    """Put the stack in the state a learner's stack has after `make run`: the sample data
    loaded and the dbt project built (full refresh, so no day of another data set survives)."""
    from course.dbt_tools import run_dbt
    from course.loaders import load_all

    load_all(settings)
    run_dbt(["build", "--full-refresh", "--quiet"], settings, check=True)


@pytest.fixture(scope="session")
def stack_env_vars(stack_settings: Settings) -> dict[str, str]:
    """The process environment plus every setting of the session's stack (child processes)."""
    return {**os.environ, **stack_settings.client_env()}
