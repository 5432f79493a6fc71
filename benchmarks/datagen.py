"""Benchmark the data generator: time, rows/s and peak memory for 100k and 1M orders.

Each size runs in its own child process (`course data generate`), so its peak RSS is its own
and includes the interpreter and imports, as a learner would see it. The target is 1M orders
with their lines in under 20 s on 2 cores, in memory that does not grow with the size.

    .venv/bin/python benchmarks/datagen.py [--orders 100000 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = {1_000_000: 20.0}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run(orders: int, out: Path) -> tuple[float, int, int]:
    """Generate `orders` orders into `out`; returns (seconds, rows written, peak RSS bytes)."""
    cmd = [sys.executable, "-m", "course.cli", "data", "generate", "--orders", str(orders),
           "--seed", "1", "--out", str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    # wait4 gives this child's own resource usage (ru_maxrss is in KiB on Linux).
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    output = child.stdout.read() if child.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"generate --orders {orders} failed:\n{output}")
    rows = sum(int(line.split()[-1].replace(",", "")) for line in output.splitlines()
               if line.startswith("  "))
    return elapsed, rows, usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, help="write the sets here and keep them")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="course-datagen-"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, output in {base}")
    print(f"{'orders':>12}{'rows':>14}{'seconds':>10}{'rows/s':>14}{'peak RSS':>12}"
          f"{'written':>12}  target")
    try:
        for orders in args.orders:
            out = base / f"orders-{orders}"
            shutil.rmtree(out, ignore_errors=True)
            elapsed, rows, rss = run(orders, out)
            target = TARGET_SECONDS.get(orders)
            verdict = "" if target is None else (
                f"< {target:.0f} s " + ("PASS" if elapsed < target else "MISS"))
            print(f"{orders:>12,}{rows:>14,}{elapsed:>10.2f}{rows / elapsed:>14,.0f}"
                  f"{rss / 2**20:>9.0f} MB{folder_bytes(out) / 2**20:>9.0f} MB  {verdict}")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
