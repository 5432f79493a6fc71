"""The `course` CLI: up, status, down, logs, and the errors a learner is likely to meet."""

from __future__ import annotations

import json
import socket

from course.stack.scratch import free_port, open_temp_folder

from conftest import course, stack_env


def status_of(env, name: str) -> dict:
    services = json.loads(course(env, "status", "--json").stdout)["services"]
    return next(s for s in services if s["name"] == name)


def test_status_json_reports_the_running_stack(stack_settings, clickhouse_env):
    out = json.loads(course(clickhouse_env, "status", "--json").stdout)
    assert out["mode"] == "embedded"
    by_name = {s["name"]: s for s in out["services"]}
    assert by_name["clickhouse"]["running"] and by_name["clickhouse"]["version"].startswith("26.")
    assert by_name["clickhouse"]["address"] == stack_settings.clickhouse_url
    assert by_name["postgres"]["running"] and by_name["postgres"]["version"].startswith("18.")
    assert by_name["postgres"]["data_bytes"] > 1_000_000
    assert by_name["airflow"]["running"] is False  # opt-in, not a core service


def test_up_twice_is_a_no_op(clickhouse_env):
    before = status_of(clickhouse_env, "clickhouse")["pid"]
    out = course(clickhouse_env, "up").stdout
    assert out.count("already running") == 2
    assert status_of(clickhouse_env, "clickhouse")["pid"] == before


def test_logs_show_the_server_log(clickhouse_env):
    out = course(clickhouse_env, "logs", "clickhouse", "-n", "200").stdout
    assert "ready on http://127.0.0.1" in out


def test_unknown_service_names_the_known_ones(clickhouse_env):
    proc = course(clickhouse_env, "up", "clickhuose", check=False)
    assert proc.returncode == 2
    assert "unknown service clickhuose" in proc.stderr and "postgres" in proc.stderr


def test_bad_port_setting_names_the_variable(tmp_path):
    env = stack_env(tmp_path, 1)
    env["CLICKHOUSE_PORT"] = "eighty"
    proc = course(env, "up", check=False)
    assert proc.returncode == 2 and "CLICKHOUSE_PORT" in proc.stderr


def test_port_in_use_names_port_holder_and_variable(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = course(stack_env(tmp_path, port), "up", check=False)
    assert proc.returncode == 1
    assert f"port {port}" in proc.stderr and "already in use by pid" in proc.stderr
    assert "CLICKHOUSE_PORT" in proc.stderr


def test_public_address_without_password_is_refused(tmp_path):
    env = stack_env(tmp_path, free_port(), password="")
    env["CLICKHOUSE_HOST"] = "0.0.0.0"
    proc = course(env, "up", check=False)
    assert proc.returncode == 1 and "CLICKHOUSE_PASSWORD" in proc.stderr


def test_state_folder_not_writable_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = course(stack_env(blocker / "state", free_port()), "up", check=False)
    assert proc.returncode == 1
    assert "not writable" in proc.stderr and "COURSE_HOME" in proc.stderr


def test_stale_pid_file_is_ignored(tmp_path):
    env = stack_env(tmp_path, free_port())
    pid_file = tmp_path / "run" / "clickhouse.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text("999999\n")
    assert status_of(env, "clickhouse")["running"] is False
    assert not pid_file.exists()


def test_down_with_nothing_running_is_fine(tmp_path):
    out = course(stack_env(tmp_path, free_port()), "down").stdout
    assert out.count("not running") == 3


def test_purge_asks_first_and_keeps_data_without_yes(tmp_path):
    data = tmp_path / "clickhouse" / "data"
    data.mkdir(parents=True)
    proc = course(stack_env(tmp_path, free_port()), "down", "clickhouse", "--purge",
                  check=False)  # stdin is empty: the answer is "no"
    assert proc.returncode == 1 and data.exists()
    assert "nothing deleted" in proc.stdout and "Traceback" not in proc.stderr


def test_purge_with_yes_deletes_the_data(tmp_path):
    data = tmp_path / "clickhouse" / "data"
    data.mkdir(parents=True)
    out = course(stack_env(tmp_path, free_port()), "down", "clickhouse", "--purge",
                 "--yes").stdout
    assert "deleted" in out and not data.exists()


def test_jupyter_is_a_service_in_docker_mode_only(tmp_path):
    env = stack_env(tmp_path, free_port())
    embedded = course(env, "up", "jupyter", check=False)
    assert embedded.returncode == 2 and "unknown service jupyter" in embedded.stderr
    docker = course(env, "up", "jupyter", "--mode", "docker", check=False)
    assert docker.returncode == 1 and "no Docker engine answers" in docker.stderr


def test_docker_mode_without_engine_says_what_to_do(tmp_path):
    proc = course(stack_env(tmp_path, free_port()), "up", "--mode", "docker", check=False)
    assert proc.returncode == 1
    assert "no Docker engine answers" in proc.stderr and "--mode embedded" in proc.stderr


def test_smoke_job_passes(clickhouse_env):
    out = course(clickhouse_env, "smoke", "--rows", "20000").stdout
    assert "smoke job passed: 20,000 rows" in out


def test_doctor_passes_on_a_fit_machine():
    home = open_temp_folder("course-doctor-")  # reachable by PostgreSQL's own user, unlike tmp_path
    proc = course(stack_env(home, free_port()), "doctor", check=False)
    assert proc.returncode == 0, proc.stdout
    assert "Python 3." in proc.stdout and "Docker engine" in proc.stdout


def test_doctor_names_a_busy_port_and_its_fix(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = course(stack_env(tmp_path, port), "doctor", check=False)
    assert proc.returncode == 1
    assert f"[FAIL] port {port} (clickhouse) is in use" in proc.stdout
    assert "set CLICKHOUSE_PORT=<free port> in .env" in proc.stdout


def test_doctor_names_an_unwritable_state_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = course(stack_env(blocker / "state", free_port()), "doctor", check=False)
    assert proc.returncode == 1 and "is not writable" in proc.stdout


def test_lab_starts_jupyterlab_on_the_lessons(stack_env_vars):
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    lab = subprocess.Popen(
        [sys.executable, "-m", "course.cli", "lab", "--", "--no-browser", f"--port={port}",
         "--IdentityProvider.token=course-test"],
        env=stack_env_vars, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/contents/notebooks?token=course-test"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    listing = json.loads(response.read())
                break
            except OSError:
                assert lab.poll() is None, lab.stdout.read()
                assert time.monotonic() < deadline, "JupyterLab did not answer in 90 s"
                time.sleep(1)
        names = {item["name"] for item in listing["content"]}
        assert "00_welcome_and_setup.ipynb" in names
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=30)
