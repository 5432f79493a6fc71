"""`course up airflow`: Airflow 3 standalone on demand, healthy, with a generated login."""

from __future__ import annotations

import json
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


def test_down_stops_every_airflow_process(airflow, clickhouse_env, stack_settings):
    course(clickhouse_env, "down", "airflow")
    home = str(stack_settings.home)
    leftovers = [p for p in psutil.process_iter(["environ"])
                 if (p.info.get("environ") or {}).get("AIRFLOW_HOME", "").startswith(home)]
    assert leftovers == []
