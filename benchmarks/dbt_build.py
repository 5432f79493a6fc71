"""How fast the data loads and the dbt project builds through the embedded stack.

Starts its own stack (`course up`: ClickHouse and PostgreSQL) on free ports in a temporary
COURSE_HOME, then for each data set: the sample in data/, and generated sets of 100,000 and
1,000,000 orders (`course.datagen`, generation timed apart):

- load: `load_all` (validate the files, load the CSVs into raw.*, seed PostgreSQL, ingest into
  raw.pg_*), with its wall time and rows per second (data rows of all files / load time);
- build: `dbt build --full-refresh` of dbt/clickhouse_analytics (models, data and unit tests),
  its wall time as a learner sees it (the whole dbt process).

Targets: the sample builds in 20 s or less; 1M orders load in 15 s and build in 60 s or less
(on a 2-core machine). Each is printed PASS or MISS; misses are reported, not failures: the
exit code is 0 unless the benchmark itself breaks. The stack is stopped (`course down`) and the
temporary folder removed at the end.

    .venv/bin/python benchmarks/dbt_build.py [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from course import dbt_tools  # noqa: E402
from course.datagen import generate  # noqa: E402
from course.loaders import DATA_DIR, load_all  # noqa: E402
from course.settings import Settings, load_settings  # noqa: E402
from course.stack.scratch import free_port, open_temp_folder  # noqa: E402

SAMPLE_BUILD_TARGET_S = 20.0
MILLION_LOAD_TARGET_S = 15.0
MILLION_BUILD_TARGET_S = 60.0
DEFAULT_SIZES = (100_000, 1_000_000)


@dataclass
class Result:
    """One data set's numbers."""

    name: str
    orders: int
    rows: int
    generate_s: float | None
    load_s: float
    build_s: float
    nodes: str
    load_target: float | None = None
    build_target: float | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.load_s if self.load_s else 0.0




def stack_env(home: Path) -> dict[str, str]:
    """Environment of a private embedded stack on free ports."""
    return {
        **os.environ,
        "COURSE_HOME": str(home),
        "COURSE_MODE": "embedded",
        "CLICKHOUSE_HOST": "127.0.0.1",
        "CLICKHOUSE_PORT": str(free_port()),
        "CLICKHOUSE_USER": "default",
        "CLICKHOUSE_PASSWORD": "bench-pass",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(free_port()),
        "POSTGRES_USER": "course_bench",
        "POSTGRES_PASSWORD": "bench-pass",
        "POSTGRES_DB": "shop_bench",
        "AIRFLOW_PORT": str(free_port()),
    }


def course(env: dict[str, str], *args: str, check: bool = True) -> None:
    """Run the `course` CLI (the way a learner starts and stops the stack)."""
    proc = subprocess.run(
        [sys.executable, "-m", "course.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"course {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def measure(
    name: str, settings: Settings, data_dir: Path, work: Path, generate_s: float | None = None
) -> Result:
    """Load one data set and build the project on it; both timed."""
    started = time.perf_counter()
    loaded = load_all(settings, data_dir=data_dir)
    load_s = time.perf_counter() - started
    steps = ", ".join(f"{step} {s:.1f} s" for step, s in getattr(loaded, "seconds", {}).items())
    print(f"{name}: load {load_s:.1f} s ({steps})", flush=True)
    target = work / "dbt" / name
    started = time.perf_counter()
    proc = dbt_tools.run_dbt(
        ["build", "--full-refresh"],
        settings,
        target_path=target / "target",
        log_path=target / "logs",
    )
    build_s = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed on {name}:\n{proc.stdout[-6000:]}")
    done = [line for line in proc.stdout.splitlines() if "Done. PASS=" in line]
    nodes = done[-1].split("Done. ", 1)[1] if done else "?"
    return Result(
        name,
        loaded.files.get("orders.csv", 0),
        sum(loaded.files.values()),
        generate_s,
        load_s,
        build_s,
        nodes,
    )


def verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"{'PASS' if value <= target else 'MISS'} (<= {target:.0f} s)"


def report(results: list[Result]) -> list[str]:
    """The table, and the names of the missed targets."""
    print(
        f"{'data set':<10}{'orders':>10}{'rows':>11}{'gen s':>7}{'load s':>8}{'rows/s':>11}"
        f"{'build s':>9}  load target        build target       dbt nodes"
    )
    misses = []
    for r in results:
        gen = f"{r.generate_s:.1f}" if r.generate_s is not None else "-"
        print(
            f"{r.name:<10}{r.orders:>10,}{r.rows:>11,}{gen:>7}{r.load_s:>8.1f}"
            f"{r.rows_per_s:>11,.0f}{r.build_s:>9.1f}  {verdict(r.load_s, r.load_target):<19}"
            f"{verdict(r.build_s, r.build_target):<19}{r.nodes}"
        )
        if r.load_target is not None and r.load_s > r.load_target:
            misses.append(f"{r.name} load {r.load_s:.1f} s > {r.load_target:.0f} s")
        if r.build_target is not None and r.build_s > r.build_target:
            misses.append(f"{r.name} build {r.build_s:.1f} s > {r.build_target:.0f} s")
    return misses


def run(sizes: list[int], work: Path) -> list[Result]:
    """Start the stack, measure every data set, stop the stack."""
    home = work / "home"
    home.mkdir()
    home.chmod(0o755)  # PostgreSQL runs as its own user and must reach its data folder
    env = stack_env(home)
    settings = load_settings(env=env)
    results = []
    course(env, "up")
    try:
        sample = measure("sample", settings, DATA_DIR, work)
        sample.build_target = SAMPLE_BUILD_TARGET_S
        results.append(sample)
        print(f"sample: load {sample.load_s:.1f} s, build {sample.build_s:.1f} s", flush=True)
        for orders in sizes:
            data_dir = work / f"orders_{orders}"
            started = time.perf_counter()
            generate(data_dir, orders, seed=1)
            generate_s = time.perf_counter() - started
            name = f"{orders // 1000}k" if orders < 1_000_000 else f"{orders // 1_000_000}M"
            result = measure(name, settings, data_dir, work, generate_s)
            if orders == 1_000_000:
                result.load_target = MILLION_LOAD_TARGET_S
                result.build_target = MILLION_BUILD_TARGET_S
            results.append(result)
            print(f"{name}: load {result.load_s:.1f} s, build {result.build_s:.1f} s", flush=True)
            shutil.rmtree(data_dir, ignore_errors=True)
    finally:
        course(env, "down", check=False)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (targets missed or not), 1 when it broke."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="generated data sets, in orders (default: 100000,1000000)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(
        f"dbt build benchmark: {platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    work = open_temp_folder("course-dbt-bench-")
    try:
        results = run(sizes, work)
    except Exception:
        traceback.print_exc()
        print("benchmark FAILED", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    misses = report(results)
    print(f"{len(misses)} target(s) missed" + (": " + "; ".join(misses) if misses else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
