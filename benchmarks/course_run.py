"""The whole course, as `make run` runs it: wall time and peak memory.

Starts a private embedded stack (its own state folder and ports), then runs `course run`
(every lesson notebook in order with papermill) while sampling memory every half second:
the stack (ClickHouse and PostgreSQL process trees) and the run (papermill, each notebook's
kernel and what it starts: dbt, the dag.test() child). Memory is PSS, so pages shared between
processes count once; the RSS sum is printed beside it.

    .venv/bin/python benchmarks/course_run.py [NOTEBOOK ...]
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import psutil

from course.stack.scratch import free_port, open_temp_folder
from stack import pids

MB = 1024 * 1024
TARGET_SECONDS = 300.0
TARGET_MB = 2048.0


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def memory(processes: list[psutil.Process]) -> tuple[float, float]:
    """(PSS, RSS) in MB summed over `processes`."""
    pss = rss = 0
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            info = proc.memory_full_info()
            pss, rss = pss + info.pss, rss + info.rss
    return pss / MB, rss / MB


class Sampler(threading.Thread):
    """Samples the stack's and the run's memory until stopped; keeps the peaks."""

    def __init__(self, stack_pids: list[int], run_pid: int) -> None:
        super().__init__(daemon=True)
        self.stack_pids, self.run_pid = stack_pids, run_pid
        self.peak = {"stack": 0.0, "run": 0.0, "total": 0.0, "total_rss": 0.0}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            stack_pss, stack_rss = memory([p for pid in self.stack_pids for p in tree(pid)])
            run_pss, run_rss = memory(tree(self.run_pid))
            self.peak["stack"] = max(self.peak["stack"], stack_pss)
            self.peak["run"] = max(self.peak["run"], run_pss)
            self.peak["total"] = max(self.peak["total"], stack_pss + run_pss)
            self.peak["total_rss"] = max(self.peak["total_rss"], stack_rss + run_rss)


def main() -> int:
    home = open_temp_folder("course-bench-run-")
    env = {**os.environ, "COURSE_HOME": str(home), "COURSE_MODE": "embedded",
           "CLICKHOUSE_PORT": str(free_port()), "CLICKHOUSE_PASSWORD": "bench",
           "POSTGRES_PORT": str(free_port()), "AIRFLOW_PORT": str(free_port())}
    course = [sys.executable, "-m", "course.cli"]
    try:
        subprocess.run([*course, "up"], env=env, check=True, stdout=subprocess.DEVNULL)
        stack_pids = list(pids(env).values())
        started = time.perf_counter()
        run = subprocess.Popen([*course, "run", "--out", str(home / "executed"), *sys.argv[1:]],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
        sampler = Sampler(stack_pids, run.pid)
        sampler.start()
        output = run.communicate()[0]
        wall = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
    finally:
        subprocess.run([*course, "down"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(home, ignore_errors=True)

    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print("\nper notebook:")
    for name, seconds in re.findall(r"^\s+(?:ok|FAILED)\s+(\S+)\s+([\d.]+) s$", output, re.M):
        print(f"  {name:<32} {float(seconds):6.1f} s")
    passed = run.returncode == 0
    print(f"\n{'measure':<34} {'value':>10} {'target':>10} {'ratio':>7}")
    rows = [("course run, wall time (s)", wall, TARGET_SECONDS),
            ("peak PSS, stack + run (MB)", sampler.peak["total"], TARGET_MB),
            ("  stack alone at its peak (MB)", sampler.peak["stack"], None),
            ("  run + kernels at its peak (MB)", sampler.peak["run"], None),
            ("peak RSS sum, stack + run (MB)", sampler.peak["total_rss"], TARGET_MB)]
    for label, value, target in rows:
        ratio = f"{value / target:6.2f}x" if target else ""
        print(f"{label:<34} {value:>10.1f} {target or '':>10} {ratio:>7}")
    print(f"\nnotebooks: {'all passed' if passed else 'FAILED (see `course run`)'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
