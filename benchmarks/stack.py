"""How fast the embedded stack starts and how much memory it holds.

Prints, in one run: `course up` cold (new state folder) and warm (existing data), `course up
airflow` to healthy, and each service's memory idle and under a query load. Memory is the
proportional set size (PSS) summed over a service's process tree, so PostgreSQL's shared
buffers are not counted once per backend.

    .venv/bin/python benchmarks/stack.py [--skip-airflow]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

import psutil

from course.stack.scratch import free_port, open_temp_folder

MB = 1024 * 1024
TARGETS = {"cold": 10.0, "warm": 3.0, "idle_core_mb": 600.0}




def course(env: dict[str, str], *args: str) -> float:
    """Run `course ARGS`; return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "course.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def tree_pss(pid: int) -> float:
    """PSS in MB of a process and all its descendants."""
    total = 0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_full_info().pss
    except psutil.Error:
        return 0.0
    return total / MB


def pids(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-m", "course.cli", "status", "--json"], env=env,
                         check=True, capture_output=True, text=True).stdout
    return {s["name"]: s["pid"] for s in json.loads(out)["services"] if s["running"]}


def query_load(env: dict[str, str], seconds: float) -> None:
    """Keep both servers busy: aggregations in ClickHouse, a sort in PostgreSQL."""
    import clickhouse_connect
    import psycopg

    from course.settings import load_settings

    s = load_settings(env=env)
    ch = clickhouse_connect.get_client(host=s.clickhouse_host, port=s.clickhouse_port,
                                       username=s.clickhouse_user, password=s.clickhouse_password)
    deadline = time.monotonic() + seconds
    with psycopg.connect(s.postgres_dsn()) as pg:
        while time.monotonic() < deadline:
            ch.query("SELECT number % 1000 AS k, count(), sum(number) FROM numbers(20000000) "
                     "GROUP BY k ORDER BY k")
            pg.execute("SELECT g FROM generate_series(1, 300000) g ORDER BY md5(g::text) LIMIT 5")


def peak_during(env: dict[str, str], seconds: float) -> dict[str, float]:
    running = pids(env)
    peak = dict.fromkeys(running, 0.0)
    worker = threading.Thread(target=query_load, args=(env, seconds))
    worker.start()
    while worker.is_alive():
        for name, pid in running.items():
            peak[name] = max(peak[name], tree_pss(pid))
        time.sleep(0.2)
    worker.join()
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-airflow", action="store_true")
    parser.add_argument("--load-seconds", type=float, default=8.0)
    args = parser.parse_args()

    home = open_temp_folder("course-bench-stack-")
    env = {**os.environ, "COURSE_HOME": str(home), "COURSE_MODE": "embedded",
           "CLICKHOUSE_PORT": str(free_port()), "CLICKHOUSE_PASSWORD": "bench",
           "POSTGRES_PORT": str(free_port()), "AIRFLOW_PORT": str(free_port())}
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 1024**3:.0f} GB, "
          f"Python {platform.python_version()}")
    rows: list[tuple[str, str, str, str]] = []
    try:
        cold = course(env, "up")
        course(env, "down")
        warm = course(env, "up")
        rows.append(("course up, cold (new state folder)", f"{cold:.1f} s",
                     f"<= {TARGETS['cold']:.0f} s", verdict(cold <= TARGETS["cold"])))
        rows.append(("course up, warm (existing data)", f"{warm:.1f} s",
                     f"<= {TARGETS['warm']:.0f} s", verdict(warm <= TARGETS["warm"])))
        time.sleep(2)
        idle = {name: tree_pss(pid) for name, pid in pids(env).items()}
        core_idle = idle["clickhouse"] + idle["postgres"]
        rows.append(("clickhouse idle", f"{idle['clickhouse']:.0f} MB", "", ""))
        rows.append(("postgres idle", f"{idle['postgres']:.0f} MB", "", ""))
        rows.append(("clickhouse + postgres idle", f"{core_idle:.0f} MB",
                     f"<= {TARGETS['idle_core_mb']:.0f} MB",
                     verdict(core_idle <= TARGETS["idle_core_mb"])))
        busy = peak_during(env, args.load_seconds)
        rows.append(("clickhouse under query load (peak)", f"{busy['clickhouse']:.0f} MB", "", ""))
        rows.append(("postgres under query load (peak)", f"{busy['postgres']:.0f} MB", "", ""))
        if not args.skip_airflow:
            airflow_up = course(env, "up", "airflow")
            rows.append(("course up airflow, to healthy", f"{airflow_up:.1f} s", "", ""))
            time.sleep(5)
            rows.append(("airflow idle (all its processes)",
                         f"{tree_pss(pids(env)['airflow']):.0f} MB", "", ""))
    finally:
        subprocess.run([sys.executable, "-m", "course.cli", "down"], env=env,
                       stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(home, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  {'target':>10}  result")
    for name, value, target, result in rows:
        print(f"{name:<{width}}  {value:>10}  {target:>10}  {result}")
    return 0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


if __name__ == "__main__":
    sys.exit(main())
