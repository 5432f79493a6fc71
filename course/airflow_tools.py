"""Run and draw the course's DAGs from notebooks and tests, without the Airflow UI.

A DAG runs with `dag.test()` in a child process that gets Airflow's configuration from the
course settings (see `course.stack.airflow.airflow_environment`), so a notebook kernel keeps
no Airflow state between lessons. The child prints one JSON line with each task's state.

    python -m course.airflow_tools test DAG_ID     # run it, print the task table
    python -m course.airflow_tools graph DAG_ID    # print its tasks and edges as JSON
    python -m course.airflow_tools dagbag -        # parse the folder: DAG ids, import errors
    python -m course.airflow_tools inspect DAG_ID  # parse, describe the DAG, run it on request
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .settings import Settings, load_settings
from .stack.airflow import DAGS_FOLDER, airflow_process_env

RESULT_MARK = "COURSE_DAG_RESULT "


class DagRunFailed(RuntimeError):
    """A DAG run ended in failure; `tasks` holds every task's state for the report."""

    def __init__(self, message: str, tasks: list[dict[str, Any]], log: str = "") -> None:
        super().__init__(message)
        self.tasks = tasks
        self.log = log


def ensure_metadata_db(settings: Settings) -> None:
    """Create Airflow's SQLite metadata database on first use (`airflow db migrate`)."""
    home = settings.home / "airflow"
    marker = home / ".migrated"
    if marker.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"],
                            env=airflow_process_env(settings), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed:\n{result.stdout}\n{result.stderr}")
    marker.write_text("ok\n")


def _child(command: str, dag_id: str, settings: Settings, timeout: float,
           extra_env: Mapping[str, str] | None = None) -> tuple[subprocess.CompletedProcess, Any]:
    """Run this module as a child Airflow process; `extra_env` can point it elsewhere, e.g.
    AIRFLOW__CORE__DAGS_FOLDER (another DAG folder) or COURSE_DBT_PROJECT_DIR (another dbt
    project for the Cosmos DAG)."""
    ensure_metadata_db(settings)
    env = {**airflow_process_env(settings), **(extra_env or {})}
    proc = subprocess.run([sys.executable, "-m", "course.airflow_tools", command, dag_id],
                          env=env, capture_output=True, text=True, timeout=timeout)
    payload = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            payload = json.loads(line[len(RESULT_MARK):])
    return proc, payload


def run_dag_test(dag_id: str, settings: Settings | None = None, timeout: float = 1800,
                 extra_env: Mapping[str, str] | None = None):
    """Run `dag_id` once with `dag.test()` and return a DataFrame: task, state, seconds, tries.

    Raises DagRunFailed (with the table in `.tasks`) when any task did not succeed.
    """
    import pandas as pd

    settings = settings or load_settings()
    started = time.perf_counter()
    proc, result = _child("test", dag_id, settings, timeout, extra_env)
    if result is None:
        raise RuntimeError(f"dag.test() of {dag_id} did not report (exit {proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    table = pd.DataFrame(result["tasks"], columns=["task_id", "state", "seconds", "tries"])
    table.attrs["wall_seconds"] = time.perf_counter() - started
    table.attrs["log"] = proc.stdout + proc.stderr
    if result["state"] != "success":
        failed = table.loc[table.state != "success", "task_id"].tolist()
        raise DagRunFailed(f"DAG {dag_id} ended {result['state']}; tasks not successful: "
                           f"{', '.join(failed)}", result["tasks"], table.attrs["log"])
    return table


def dag_graph(dag_id: str, settings: Settings | None = None,
              extra_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The DAG's tasks with their upstream task ids and task-group ids, from a parse."""
    proc, result = _child("graph", dag_id, settings or load_settings(), 600, extra_env)
    if result is None:
        raise RuntimeError(f"cannot parse {dag_id}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return result


def parse_dags(settings: Settings | None = None,
               extra_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse the DAG folder once, as the DAG processor does: DAG ids, import errors, seconds."""
    proc, result = _child("dagbag", "-", settings or load_settings(), 600, extra_env)
    if result is None:
        raise RuntimeError(f"cannot parse the DAG folder:\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return result


@dataclass
class DagInspection:
    """One parse of a DAG folder seen from one DAG, and its dag.test() run if one was asked for.

    `dag` is None when the folder has no DAG `dag_id`; otherwise it holds `schedule` (the cron
    expression or preset, None for no schedule), `schedule_description` ("At 06:00"), and
    `tasks`: task_id, upstream (task ids), retries, retry_delay_seconds, operator.
    """

    dag_ids: list[str]
    import_errors: dict[str, str]
    dag: dict[str, Any] | None
    run: Any = None  # the task table (as run_dag_test returns it) when the DAG was run
    run_state: str | None = None  # "success", "failed", ... when the DAG was run
    log: str = ""


def inspect_dag(dag_id: str, settings: Settings | None = None,
                extra_env: Mapping[str, str] | None = None,
                run_if: Callable[[DagInspection], bool] | None = None,
                timeout: float = 1800) -> DagInspection:
    """Parse the DAG folder, describe `dag_id`, and run it with dag.test() if `run_if` says so.

    One child process does both, so a check that looks at a DAG's structure before it runs
    it pays for importing Airflow, Cosmos and dbt once. `run_if` sees the description (without
    the run) and returns True to run the DAG; a failed run is reported in `run_state` and the
    task table, not raised.
    """
    import pandas as pd

    settings = settings or load_settings()
    ensure_metadata_db(settings)
    env = {**airflow_process_env(settings), **(extra_env or {})}
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "course.airflow_tools", "inspect", dag_id],
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=errors, text=True)
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            out: list[str] = []
            described = None
            for line in proc.stdout:  # type: ignore[union-attr]
                out.append(line)
                if line.startswith(RESULT_MARK):
                    described = json.loads(line[len(RESULT_MARK):])
                    break
            inspection = None
            go = False
            if described is not None:
                inspection = DagInspection(described["dag_ids"], described["import_errors"],
                                           described["dag"])
                go = inspection.dag is not None and run_if is not None and run_if(inspection)
            try:
                proc.stdin.write("test\n" if go else "stop\n")  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass
            rest = proc.stdout.read()  # type: ignore[union-attr]
            proc.wait()
        finally:
            watchdog.cancel()
        errors.seek(0)
        log = "".join(out) + rest + errors.read()
    if inspection is None:
        raise RuntimeError(f"cannot parse the DAG folder (exit {proc.returncode}):\n"
                           f"{log[-4000:]}")
    inspection.log = log
    if go:
        result = None
        for line in rest.splitlines():
            if line.startswith(RESULT_MARK):
                result = json.loads(line[len(RESULT_MARK):])
        if result is None:
            raise RuntimeError(f"dag.test() of {dag_id} did not report (exit "
                               f"{proc.returncode}):\n{log[-4000:]}")
        inspection.run = pd.DataFrame(result["tasks"],
                                      columns=["task_id", "state", "seconds", "tries"])
        inspection.run_state = result["state"]
    return inspection


def draw_dag(dag_id: str, settings: Settings | None = None, ax=None):
    """Draw the DAG's task graph left to right, one column per dependency level."""
    import matplotlib.pyplot as plt

    graph = dag_graph(dag_id, settings)
    tasks = {t["task_id"]: t for t in graph["tasks"]}
    level: dict[str, int] = {}

    def depth(task_id: str) -> int:
        if task_id not in level:
            ups = tasks[task_id]["upstream"]
            level[task_id] = 1 + max((depth(u) for u in ups), default=-1)
        return level[task_id]

    for task_id in tasks:
        depth(task_id)
    columns: dict[int, list[str]] = {}
    for task_id, lvl in sorted(level.items(), key=lambda kv: (kv[1], kv[0])):
        columns.setdefault(lvl, []).append(task_id)
    pos = {t: (lvl, -i + (len(col) - 1) / 2) for lvl, col in columns.items()
           for i, t in enumerate(col)}
    height = max(len(c) for c in columns.values())
    if ax is None:
        _, ax = plt.subplots(figsize=(max(8, 2.6 * len(columns)), max(3, 0.45 * height)))
    for task_id, task in tasks.items():
        for up in task["upstream"]:
            (x0, y0), (x1, y1) = pos[up], pos[task_id]
            ax.annotate("", xy=(x1 - 0.05, y1), xytext=(x0 + 0.05, y0),
                        arrowprops={"arrowstyle": "->", "color": "#999999", "lw": 0.8})
    palette = {"preflight": "#dbeafe", "ingest": "#dcfce7", "dbt": "#fef3c7"}
    for task_id, (x, y) in pos.items():
        group = task_id.split(".", 1)[0] if "." in task_id else ""
        ax.text(x, y, task_id.split(".")[-1], ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.3", "fc": palette.get(group, "#f3f4f6"),
                      "ec": "#6b7280"})
    ax.set_xlim(-0.7, len(columns) - 0.3)
    ax.set_ylim(-height / 2 - 0.5, height / 2 + 0.5)
    ax.set_axis_off()
    ax.set_title(f"DAG {dag_id}: {len(tasks)} tasks")
    return ax.figure


# -- the child process ------------------------------------------------------------------------


def _dags_folder() -> str:
    """The folder to parse: AIRFLOW__CORE__DAGS_FOLDER (set by the parent), else the course's."""
    return os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))


def _load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=_dags_folder())
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise SystemExit(f"no DAG {dag_id!r} in {_dags_folder()}; DAGs: {sorted(bag.dag_ids)}")
    return dag


def _child_test(dag_id: str) -> None:
    _test_and_report(_load_dag(dag_id))


def _test_and_report(dag) -> None:
    run = dag.test()
    tasks = []
    for ti in sorted(run.get_task_instances(), key=lambda t: (t.start_date is None,
                                                               t.start_date, t.task_id)):
        tasks.append({"task_id": ti.task_id, "state": str(ti.state or "none"),
                      "seconds": round(ti.duration or 0.0, 2), "tries": ti.try_number})
    state = str(run.state)
    print(RESULT_MARK + json.dumps({"state": state, "tasks": tasks}), flush=True)


def _child_dagbag(_: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=_dags_folder())
    seconds = time.perf_counter() - started
    print(RESULT_MARK + json.dumps({"dag_ids": sorted(bag.dag_ids), "seconds": seconds,
                                    "import_errors": {str(k): str(v) for k, v in
                                                      bag.import_errors.items()}}), flush=True)


def _child_graph(dag_id: str) -> None:
    dag = _load_dag(dag_id)
    tasks = [{"task_id": t.task_id, "upstream": sorted(t.upstream_task_ids)}
             for t in dag.tasks]
    print(RESULT_MARK + json.dumps({"dag_id": dag_id, "tasks": tasks}), flush=True)


def _schedule(dag) -> tuple[str | None, str | None]:
    """The DAG's schedule as written (cron expression or preset) and in words."""
    timetable = dag.timetable
    expression = getattr(timetable, "expression", None)
    try:
        from airflow.serialization.encoders import coerce_to_core_timetable

        core = coerce_to_core_timetable(timetable)
        return expression or core.summary, core.description
    except Exception:  # noqa: BLE001 - a description is a nicety; the expression is enough
        return expression, None


def _child_inspect(dag_id: str) -> None:
    """Parse the folder, print what it holds and the DAG's description, then run the DAG if
    the parent answers `test` on stdin."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=_dags_folder())
    dag = bag.dags.get(dag_id)
    description = None
    if dag is not None:
        schedule, words = _schedule(dag)
        description = {
            "dag_id": dag_id, "schedule": schedule, "schedule_description": words,
            "tasks": [{"task_id": t.task_id, "upstream": sorted(t.upstream_task_ids),
                       "retries": t.retries,
                       "retry_delay_seconds": t.retry_delay.total_seconds()
                       if t.retry_delay is not None else None,
                       "operator": type(t).__name__} for t in dag.tasks]}
    print(RESULT_MARK + json.dumps({
        "dag_ids": sorted(bag.dag_ids),
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dag": description}), flush=True)
    if dag is not None and sys.stdin.readline().strip() == "test":
        _test_and_report(dag)


if __name__ == "__main__":
    command, name = sys.argv[1], sys.argv[2]
    {"test": _child_test, "graph": _child_graph, "dagbag": _child_dagbag,
     "inspect": _child_inspect}[command](name)
