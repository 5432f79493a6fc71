"""The lessons as tests, on the session's stack.

1. `course run` executes every notebook in order with papermill (the learner's `make run`).
2. nbval executes them all again and compares the committed outputs of the cells marked
   `# NBVAL_CHECK_OUTPUT` (`--nbval-lax`): the notebooks GitHub renders stay true, and every
   notebook succeeds when run a second time without a reset.
3. `course run` exits non-zero naming the notebook and the cell when a cell fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course.notebooks import NOTEBOOKS_DIR, lessons

from conftest import restore_sample

pytestmark = pytest.mark.slow

LESSONS = lessons()
RUN_TIMEOUT_S = 1800
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def course(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course.cli", *args], env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


@pytest.fixture(scope="module")
def first_run(stack_settings, stack_env_vars, tmp_path_factory) -> subprocess.CompletedProcess:
    """`course run` of every lesson, once, from the sample state."""
    restore_sample(stack_settings)
    out = tmp_path_factory.mktemp("executed")
    proc = course(stack_env_vars, "run", "--out", str(out))
    proc.out = out  # type: ignore[attr-defined]
    return proc


def test_the_lessons_are_00_to_10():
    assert [p.name[:2] for p in LESSONS] == [f"{n:02d}" for n in range(11)]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_notebook_is_a_lesson(path: Path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", "one `parameters` cell"
    code = [c for c in nb.cells if c.cell_type == "code"]
    # Committed with its outputs (`make notebooks`), so GitHub shows what a run shows.
    assert all(c.execution_count for c in code if c.source.strip()), "not executed: outputs?"
    if path.name[:2] != "00":
        assert sum(c.source.startswith(CHECK_MARK) for c in code) >= 2, "checked outputs"
        assert any("lesson.check(" in c.source for c in code), "the lesson's exercise check"
    assert any("%sql" in c.source for c in code), "uses jupysql"


def test_course_run_executes_every_lesson(first_run):
    assert first_run.returncode == 0, first_run.stdout[-6000:] + first_run.stderr[-3000:]
    assert f"{len(LESSONS)} of {len(LESSONS)} notebooks passed" in first_run.stdout
    for path in LESSONS:
        assert f"ok      {path.stem}" in first_run.stdout
        executed = nbformat.read(first_run.out / path.name, as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code"
                  for o in c.outputs if o.output_type == "error"]
        assert not errors


def test_nbval_second_run_matches_committed_outputs(first_run, stack_env_vars):
    assert first_run.returncode == 0, "the first run failed; see the test above"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         "--nbval-cell-timeout=600", "--nbval-sanitize-with",
         str(NOTEBOOKS_DIR / "nbval-sanitize.cfg"), str(NOTEBOOKS_DIR)],
        env=stack_env_vars, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        cwd=NOTEBOOKS_DIR.parent)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]


def test_course_run_names_the_failing_notebook_and_cell(stack_env_vars, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# broken"),
                nbformat.v4.new_code_cell("total = 1"),
                nbformat.v4.new_code_cell("total / 0")]
    broken = tmp_path / "98_broken.ipynb"
    nbformat.write(nb, broken)
    proc = course(stack_env_vars, "run", str(broken), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "FAILED  98_broken" in proc.stdout
    assert "cell 3" in proc.stdout and "ZeroDivisionError" in proc.stdout
    assert "0 of 1 notebooks passed" in proc.stdout


def test_course_run_refuses_an_unknown_notebook(stack_env_vars):
    proc = course(stack_env_vars, "run", "42")
    assert proc.returncode == 2 and "no notebook '42'" in proc.stderr
