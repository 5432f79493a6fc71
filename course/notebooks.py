"""Run the lesson notebooks in order with papermill: the engine of `course run`.

Each notebook is executed against the running stack into `build/notebooks/`, one kernel per
notebook (so no state leaks from one lesson to the next except what the stack holds). The run
stops at the first failing notebook and names it and its cell; `--save-outputs` copies the
outputs of a successful run back into `notebooks/`, which is how the committed outputs that
GitHub renders and nbval checks are made.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .settings import PROJECT_ROOT

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
BUILD_DIR = PROJECT_ROOT / "build" / "notebooks"
KERNEL = "python3"
LESSON_NAME = re.compile(r"^\d\d_.+\.ipynb$")
# Cell metadata papermill and nbclient add; not worth committing, and different every run.
RUN_METADATA = ("papermill", "execution")


class NotebookNotFound(LookupError):
    """A notebook named on the command line does not exist."""


@dataclass
class NotebookRun:
    """How one notebook's execution went."""

    notebook: Path
    output: Path
    passed: bool
    seconds: float
    error: str = ""

    @property
    def name(self) -> str:
        return self.notebook.stem


def lessons(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The numbered lesson notebooks of `folder`, in order."""
    return sorted(p for p in folder.glob("*.ipynb") if LESSON_NAME.match(p.name))


def select(names: Sequence[str], folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The notebooks `names` refers to (all when empty), in lesson order.

    A name is a lesson number ("3", "03"), a notebook name with or without `.ipynb`, or a path.
    """
    available = lessons(folder)
    if not names:
        return available
    chosen: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.exists():
            matches = [path.resolve()]
        else:
            stem = path.name.removesuffix(".ipynb")
            matches = [p for p in available if p.stem == stem
                       or (stem.isdigit() and int(p.name[:2]) == int(stem))]
        if not matches:
            known = ", ".join(p.stem for p in available)
            raise NotebookNotFound(f"no notebook {name!r}; the lessons are: {known}")
        chosen += [m for m in matches if m not in chosen]
    return sorted(chosen, key=lambda p: p.name)


def failure_summary(exc: Exception) -> str:
    """'cell 12 (In [9]): NameError: name 'x' is not defined' from papermill's error."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first_line = (exc.source or "").strip().splitlines()[:1]
        shown = f" `{first_line[0][:70]}`" if first_line else ""
        message = (str(exc.evalue or "").strip().splitlines() or [""])[0][:300]
        return f"cell {exc.cell_index + 1} (In [{exc.exec_count}]){shown}: {exc.ename}: {message}"
    return f"{type(exc).__name__}: {str(exc).strip()[:300]}"


def execute(notebook: Path, output: Path, progress_bar: bool = False) -> NotebookRun:
    """Execute one notebook with papermill into `output`; never raises for a failing cell."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(str(notebook), str(output), kernel_name=KERNEL,
                                   cwd=str(notebook.parent), progress_bar=progress_bar,
                                   log_output=False, start_timeout=120)
    except Exception as exc:  # noqa: BLE001 - reported with the notebook and cell
        return NotebookRun(notebook, output, False, time.perf_counter() - started,
                           failure_summary(exc))
    return NotebookRun(notebook, output, True, time.perf_counter() - started)


def save_outputs(executed: Path, source: Path) -> None:
    """Copy the outputs of an executed notebook into its source, cell by cell.

    Only outputs and execution counts change; the cells' source stays as written, and
    papermill's per-run metadata is left out.
    """
    ran = nbformat.read(executed, as_version=4)
    nb = nbformat.read(source, as_version=4)
    if [c.source for c in ran.cells] != [c.source for c in nb.cells]:
        raise ValueError(f"{source.name} changed while it ran; run it again before saving")
    for cell, done in zip(nb.cells, ran.cells, strict=True):
        if cell.cell_type == "code":
            cell.outputs = done.outputs
            cell.execution_count = done.execution_count
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, source)


def progress_line(index: int, total: int, name: str, width: int = 20) -> str:
    filled = round(width * index / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {index}/{total} {name}"


def run_all(notebooks: Sequence[Path], out_dir: Path = BUILD_DIR, *, keep_going: bool = False,
            save: bool = False, echo: Callable[[str], None] | None = None) -> list[NotebookRun]:
    """Execute `notebooks` in order, printing progress and each notebook's time.

    Stops at the first failure unless `keep_going`. With `save`, a notebook that passed gets
    its outputs copied back into its source file.
    """
    def echo_now(text: str) -> None:  # flushed: progress must show live through a pipe too
        print(text, flush=True)

    echo = echo or echo_now
    runs: list[NotebookRun] = []
    tty = sys.stdout.isatty()
    for index, notebook in enumerate(notebooks):
        echo(progress_line(index, len(notebooks), f"running {notebook.stem} ..."))
        run = execute(notebook, out_dir / notebook.name, progress_bar=tty)
        runs.append(run)
        if run.passed:
            echo(f"  ok      {notebook.stem}  {run.seconds:.1f} s")
            if save:
                save_outputs(run.output, notebook)
        else:
            echo(f"  FAILED  {notebook.stem}  {run.seconds:.1f} s\n"
                 f"          {run.error}\n          executed notebook: {run.output}")
            if not keep_going:
                break
    echo(progress_line(len(runs), len(notebooks), "done"))
    return runs


def summary(runs: Sequence[NotebookRun], planned: int) -> str:
    """The table printed at the end of `course run`."""
    width = max([len(r.name) for r in runs] + [8])
    lines = [f"{'notebook':<{width}}  result  time", f"{'-' * width}  ------  ------"]
    lines += [f"{r.name:<{width}}  {'pass' if r.passed else 'FAIL':<6}  {r.seconds:5.1f}s"
              for r in runs]
    passed = sum(r.passed for r in runs)
    total = sum(r.seconds for r in runs)
    skipped = planned - len(runs)
    tail = f", {skipped} not run" if skipped else ""
    lines.append(f"\n{passed} of {planned} notebooks passed{tail} in {total:.0f} s.")
    failed = [r for r in runs if not r.passed]
    if failed:
        lines.append(f"First failure: {failed[0].name}.ipynb, {failed[0].error}")
    return "\n".join(lines)


def clean_build(out_dir: Path = BUILD_DIR) -> None:
    """Remove executed notebooks of an earlier run."""
    shutil.rmtree(out_dir, ignore_errors=True)
