"""The embedded PostgreSQL source: TCP with passwords, logical WAL, its own OS user, recovery."""

from __future__ import annotations

import json
import os
import signal

import psutil
import psycopg
import pytest

from course.settings import load_settings
from course.stack.scratch import free_port, open_temp_folder

from conftest import course, stack_env


def test_source_database_is_ready_over_tcp(stack_settings):
    with psycopg.connect(stack_settings.postgres_dsn(), connect_timeout=5) as conn:
        assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert conn.execute("SELECT current_database()").fetchone()[0] == "shop_test"
        assert conn.execute("SHOW password_encryption").fetchone()[0] == "scram-sha-256"
        assert conn.execute("SHOW server_encoding").fetchone()[0] == "UTF8"


def test_wrong_password_is_refused(stack_settings):
    dsn = stack_settings.postgres_dsn().replace(
        f"password='{stack_settings.postgres_password}'", "password='wrong'")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn, connect_timeout=5)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a separate server user")
def test_runs_as_its_own_system_user_when_root(clickhouse_env):
    status = json.loads(course(clickhouse_env, "status", "--json").stdout)
    pid = next(s["pid"] for s in status["services"] if s["name"] == "postgres")
    assert psutil.Process(pid).username() == "course-postgres"


@pytest.fixture
def private_stack():
    """A second stack of our own, for tests that kill or break servers."""
    home = open_temp_folder("course-test-pg-")
    env = stack_env(home, free_port())
    yield env
    course(env, "down", check=False)


def test_kill_9_then_up_recovers_with_data(private_stack):
    env = private_stack
    course(env, "up", "postgres")
    settings = load_settings(env=env)
    with psycopg.connect(settings.postgres_dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int primary key)")
        conn.execute("INSERT INTO kept SELECT generate_series(1, 1000)")
    status = json.loads(course(env, "status", "--json").stdout)
    pid = next(s["pid"] for s in status["services"] if s["name"] == "postgres")
    os.kill(pid, signal.SIGKILL)
    out = course(env, "up", "postgres").stdout
    assert "ready in" in out
    with psycopg.connect(settings.postgres_dsn()) as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM kept").fetchone() == (1000, 500500)


def test_changed_password_says_how_to_reset(private_stack):
    env = private_stack
    course(env, "up", "postgres")
    course(env, "down", "postgres")
    env["POSTGRES_PASSWORD"] = "something-else"
    proc = course(env, "up", "postgres", check=False)
    assert proc.returncode == 1
    assert "created with other credentials" in proc.stderr
    assert "course down postgres --purge" in proc.stderr
