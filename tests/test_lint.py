"""The code, the tests, the benchmarks and the notebooks are ruff clean (pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

from course.settings import PROJECT_ROOT


def test_ruff_check_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                           "."], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
