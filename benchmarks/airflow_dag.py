"""The analytics DAG against a plain `dbt build` of the same project, in one run.

Prints the DAG folder's parse time and the wall time of `dag.test()` of `analytics_pipeline`
beside `dbt build` on the same data, with the ratio. The stack is private: its own state
folder and ports.

    .venv/bin/python benchmarks/airflow_dag.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from course.airflow_tools import parse_dags, run_dag_test
from course.dbt_tools import parse_manifest, run_dbt
from course.loaders import load_all
from course.settings import load_settings
from course.stack.scratch import free_port, open_temp_folder

TARGET_PARSE_S = 2.0
TARGET_RATIO = 2.0




def main() -> int:
    home = open_temp_folder("course-bench-dag-")
    env = {**os.environ, "COURSE_HOME": str(home), "COURSE_MODE": "embedded",
           "CLICKHOUSE_PORT": str(free_port()), "POSTGRES_PORT": str(free_port()),
           "AIRFLOW_PORT": str(free_port())}
    os.environ.update(env)
    settings = load_settings()
    course = [sys.executable, "-m", "course.cli"]
    try:
        subprocess.run([*course, "up"], env=env, check=True, stdout=subprocess.DEVNULL)
        load_all(settings)
        parse_manifest(settings)
        parse_dags(settings)  # warm-up: Airflow's metadata database, imports
        parse_s = min(parse_dags(settings)["seconds"] for _ in range(3))
        run_dbt(["build", "--full-refresh"], settings, check=True)  # warm-up
        started = time.perf_counter()
        run_dbt(["build"], settings, check=True)
        build_s = time.perf_counter() - started
        table = run_dag_test("analytics_pipeline", settings)
        dag_s = table.attrs["wall_seconds"]
        tasks_s = table.seconds.sum()
        dbt_tasks = table[table.task_id.str.startswith("dbt.")]
    finally:
        subprocess.run([*course, "down"], env=env, check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(home, ignore_errors=True)
    ratio = dag_s / build_s
    rows = [
        ("DAG folder parse (best of 3)", f"{parse_s:.2f} s", f"<= {TARGET_PARSE_S:.0f} s",
         "PASS" if parse_s <= TARGET_PARSE_S else "MISS"),
        ("dbt build (plain)", f"{build_s:.1f} s", "", ""),
        (f"dag.test() analytics_pipeline ({len(table)} tasks)", f"{dag_s:.1f} s", "", ""),
        ("  of which in tasks (they run one at a time)", f"{tasks_s:.1f} s", "", ""),
        (f"  of which dbt tasks ({len(dbt_tasks)}), mean per task",
         f"{dbt_tasks.seconds.mean():.2f} s", "", ""),
        ("ratio dag.test() / dbt build", f"{ratio:.1f}x", f"<= {TARGET_RATIO:.0f}x",
         "PASS" if ratio <= TARGET_RATIO else "MISS"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    for name, value, target, verdict in rows:
        print(f"{name:<{width}}  {value:>9}  {target:>8}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
