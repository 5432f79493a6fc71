"""`course up airflow`: Airflow 3 standalone on demand, healthy, with a generated login."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import psutil
import pytest

from conftest import course


def post_json(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


@pytest.fixture(scope="module")
def airflow(stack_settings, clickhouse_env):
    out = course(clickhouse_env, "up", "airflow").stdout
    yield out
    course(clickhouse_env, "down", "airflow", check=False)


def test_up_waits_for_health_and_reports_the_time(airflow, stack_settings):
    assert "ready in" in airflow and f"127.0.0.1:{stack_settings.airflow_port}" in airflow
    url = f"http://127.0.0.1:{stack_settings.airflow_port}/api/v2/monitor/health"
    with urllib.request.urlopen(url, timeout=10) as resp:
        health = json.loads(resp.read())
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy"


def test_login_is_generated_and_shown_by_status(airflow, stack_settings, clickhouse_env):
    status = json.loads(course(clickhouse_env, "status", "--json").stdout)
    svc = next(s for s in status["services"] if s["name"] == "airflow")
    assert svc["running"] and svc["version"] == "3.3.2"
    password = svc["detail"].rsplit("password ", 1)[1]
    assert password != "admin" and len(password) >= 12
    token_url = f"http://127.0.0.1:{stack_settings.airflow_port}/auth/token"
    code, body = post_json(token_url, {"username": "admin", "password": password})
    assert code in (200, 201) and body["access_token"]
    code, _ = post_json(token_url, {"username": "admin", "password": "admin"})
    assert code == 401


def api(stack_settings, clickhouse_env, method: str, path: str, body: dict | None = None):
    """Call Airflow's REST API as the generated admin user."""
    status = json.loads(course(clickhouse_env, "status", "--json").stdout)
    password = next(s for s in status["services"] if s["name"] == "airflow")["detail"].rsplit(
        "password ", 1)[1]
    base = f"http://127.0.0.1:{stack_settings.airflow_port}"
    _, token = post_json(f"{base}/auth/token", {"username": "admin", "password": password})
    req = urllib.request.Request(
        f"{base}{path}", method=method, data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {token['access_token']}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_dags_show_and_a_triggered_run_succeeds(airflow, stack_settings, clickhouse_env):
    deadline = time.monotonic() + 120  # the DAG processor picks the folder up on its own
    while True:
        dags = {d["dag_id"] for d in api(stack_settings, clickhouse_env, "GET", "/api/v2/dags")[
            "dags"]}
        if {"analytics_pipeline", "connection_check"} <= dags or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert {"analytics_pipeline", "connection_check"} <= dags
    api(stack_settings, clickhouse_env, "PATCH", "/api/v2/dags/connection_check",
        {"is_paused": False})
    run = api(stack_settings, clickhouse_env, "POST", "/api/v2/dags/connection_check/dagRuns",
              {"logical_date": None})
    path = f"/api/v2/dags/connection_check/dagRuns/{run['dag_run_id']}"
    deadline = time.monotonic() + 180
    while (state := api(stack_settings, clickhouse_env, "GET", path)["state"]) in (
            "queued", "running") and time.monotonic() < deadline:
        time.sleep(2)
    assert state == "success"


def test_down_stops_every_airflow_process(airflow, clickhouse_env, stack_settings):
    course(clickhouse_env, "down", "airflow")
    home = str(stack_settings.home)
    leftovers = [p for p in psutil.process_iter(["environ"])
                 if (p.info.get("environ") or {}).get("AIRFLOW_HOME", "").startswith(home)]
    assert leftovers == []
