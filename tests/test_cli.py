"""The `course` CLI: up, status, down, and the errors a learner is likely to meet."""

from __future__ import annotations

import json
import socket

from conftest import course, free_port, stack_env


def test_status_json_reports_the_running_server(clickhouse_settings, clickhouse_env):
    out = json.loads(course(clickhouse_env, "status", "--json").stdout)
    (svc,) = out["services"]
    assert svc["name"] == "clickhouse" and svc["running"] is True
    assert svc["address"] == clickhouse_settings.clickhouse_url
    assert svc["version"].startswith("26.")


def test_up_twice_is_a_no_op(clickhouse_env):
    before = json.loads(course(clickhouse_env, "status", "--json").stdout)["services"][0]["pid"]
    out = course(clickhouse_env, "up", "clickhouse").stdout
    assert "already running" in out
    after = json.loads(course(clickhouse_env, "status", "--json").stdout)["services"][0]["pid"]
    assert before == after


def test_unknown_service_names_the_known_ones(clickhouse_env):
    proc = course(clickhouse_env, "up", "clickhuose", check=False)
    assert proc.returncode == 2
    assert "unknown service clickhuose" in proc.stderr and "clickhouse" in proc.stderr


def test_bad_port_setting_names_the_variable(tmp_path):
    env = stack_env(tmp_path, 1)
    env["CLICKHOUSE_PORT"] = "eighty"
    proc = course(env, "up", check=False)
    assert proc.returncode == 2 and "CLICKHOUSE_PORT" in proc.stderr


def test_port_in_use_is_refused_with_the_fix(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = stack_env(tmp_path, busy.getsockname()[1])
        proc = course(env, "up", check=False)
    assert proc.returncode == 1
    assert "already in use" in proc.stderr and "CLICKHOUSE_PORT" in proc.stderr


def test_public_address_without_password_is_refused(tmp_path):
    env = stack_env(tmp_path, free_port(), password="")
    env["CLICKHOUSE_HOST"] = "0.0.0.0"
    proc = course(env, "up", check=False)
    assert proc.returncode == 1 and "CLICKHOUSE_PASSWORD" in proc.stderr


def test_stale_pid_file_is_ignored(tmp_path):
    env = stack_env(tmp_path, free_port())
    pid_file = tmp_path / "run" / "clickhouse.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text("999999\n")
    status = json.loads(course(env, "status", "--json").stdout)["services"][0]
    assert status["running"] is False and not pid_file.exists()


def test_smoke_job_passes(clickhouse_env):
    out = course(clickhouse_env, "smoke", "--rows", "20000").stdout
    assert "smoke job passed: 20,000 rows" in out
