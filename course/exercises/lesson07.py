"""Lesson 07, orchestration: a Cosmos DAG that rebuilds only the marts, daily at 06:00.

The check parses the learner's DAG file in a DAG folder of its own (a child Airflow process,
as the DAG processor would), compares the DAG Cosmos rendered with what dbt's manifest says
the marts are, and, when the structure is right, runs it once with dag.test(). The run builds
into scratch databases (`check_07_marts_dag_*`): the marts read the real staging and
intermediate views through proxy views, so nothing the lessons use is rewritten.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..airflow_tools import DagInspection, inspect_dag
from .harness import CheckContext, dbt_errors
from .model import Exercise, Fail

DAG_ID = "marts_refresh"
MARTS_PATH = "models/marts/"
SCHEDULE = ("0", "6", "*", "*", "*")  # every day at 06:00
RETRIES = 2
RETRY_DELAY_S = 300.0


@dataclass
class Expected:
    """The DAG the manifest calls for: a `<model>_model_build` task per mart, a `<test>_test`
    task per test on several models (at least one a mart), and their upstream tasks."""

    marts: list[str]
    other_models: list[str]  # staging and intermediate: no task of their own
    layers: dict[str, str]  # model name -> its custom schema (staging, intermediate, marts)
    upstream: dict[str, set[str]] = field(default_factory=dict)  # task id -> upstream ids

    @property
    def model_tasks(self) -> set[str]:
        return {f"{m}_model_build" for m in self.marts}

    @property
    def test_tasks(self) -> set[str]:
        return set(self.upstream) - self.model_tasks


def expected_dag(manifest: dict[str, Any]) -> Expected:
    """What the DAG should hold, read from dbt's manifest (the file Cosmos renders from)."""
    models = {uid: node for uid, node in manifest["nodes"].items()
              if node["resource_type"] == "model"}
    marts = {uid for uid, node in models.items()
             if node["original_file_path"].startswith(MARTS_PATH)}
    expected = Expected(
        marts=sorted(models[uid]["name"] for uid in marts),
        other_models=sorted(node["name"] for uid, node in models.items() if uid not in marts),
        layers={node["name"]: node["config"].get("schema") or "" for node in models.values()})
    for uid in marts:
        parents = [p for p in models[uid]["depends_on"]["nodes"] if p in marts]
        expected.upstream[f"{models[uid]['name']}_model_build"] = {
            f"{models[p]['name']}_model_build" for p in parents}
    # Cosmos (should_detach_multiple_parents_tests) gives a test on more than one node a task
    # of its own, after those of its parents that are in the DAG.
    for node in manifest["nodes"].values():
        parents = node.get("depends_on", {}).get("nodes", [])
        if node["resource_type"] == "test" and len(parents) > 1 and set(parents) & marts:
            expected.upstream[f"{node['name']}_test"] = {
                f"{models[p]['name']}_model_build" for p in parents if p in marts}
    return expected


def load_manifest_for_cosmos(ctx: CheckContext) -> dict[str, Any]:
    """The manifest the learner's DAG renders from (`cosmos_configs()` reads the same one);
    parsed first when missing, as `course up airflow` does."""
    from ..dbt_tools import DbtError, parse_manifest
    from ..orchestration import manifest_path

    path = manifest_path(ctx.settings)
    if not path.exists():
        try:
            parse_manifest(ctx.settings)
        except DbtError as exc:
            raise Fail(f"dbt cannot parse the project, so Cosmos has nothing to render:\n"
                       f"{dbt_errors(exc.proc.stdout + exc.proc.stderr)}") from None
    return json.loads(path.read_text(encoding="utf-8"))


def proxy_upstream_views(ctx: CheckContext, expected: Expected) -> None:
    """Scratch `<check>_staging` / `<check>_intermediate` databases whose views read the real
    ones, so that the marts the DAG builds into `<check>_marts` see the course's data."""
    existing = {(r["database"], r["name"]) for _, r in ctx.query(
        "SELECT database, name FROM system.tables "
        "WHERE database IN ('staging', 'intermediate')").iterrows()}
    for layer in sorted({expected.layers[m] for m in expected.other_models}):
        ctx.fresh_database(f"{ctx.scratch}_{layer}")
    for model in expected.other_models:
        layer = expected.layers[model]
        if (layer, model) not in existing:
            raise Fail(f"The view {layer}.{model} does not exist, so the marts cannot be "
                       "built: build the dbt project first (lesson 04, or `dbt build`).")
        ctx.client.command(f"CREATE VIEW `{ctx.scratch}_{layer}`.`{model}` AS "
                           f"SELECT * FROM `{layer}`.`{model}`")


def models_with_tasks(task_ids: set[str], models: list[str]) -> set[str]:
    """The models that have a task, whatever the test behaviour named it (`m_model_build`,
    `m_run`, or the task group `m` with `m.run` and `m.test`)."""
    return {m for m in models if f"{m}_model_build" in task_ids or f"{m}_run" in task_ids
            or any(t.startswith(f"{m}.") for t in task_ids)}


def short_list(names: list[str] | set[str], limit: int = 4) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def import_error_hint(ctx: CheckContext, errors: dict[str, str]) -> str:
    """The end of Airflow's traceback: the line that says what is wrong, and where."""
    text = re.sub(r"/\S*/(07_marts_dag\.py)", r"\1", next(iter(errors.values())))
    lines = [line for line in text.strip().splitlines() if line.strip()]
    # The learner's last frame (file, line, code, caret), then the error itself; the frames
    # inside importlib or the libraries say nothing about what to fix.
    ours = [i for i, line in enumerate(lines) if line.strip().startswith(
        f'File "{ctx.exercise.file}"')]
    if ours:
        start = ours[-1]
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].strip().startswith("File ")), len(lines))
        shown = lines[start:end] + [lines[-1]] if end < len(lines) else lines[start:]
    else:
        shown = lines[-4:]
    tail = "\n".join(shown)
    return (f"Airflow cannot import {ctx.shown_file}; the DAG processor reports:\n{tail}\n"
            "Fix the line it names, then check again.")


def judge_structure(dag: dict[str, Any], expected: Expected) -> None:
    """Fail with the first way the DAG differs from the expected one, as a hint."""
    tasks = {t["task_id"]: t for t in dag["tasks"]}
    ids = set(tasks)
    built = models_with_tasks(ids, expected.marts + expected.other_models)
    extra = built - set(expected.marts)
    if extra:
        raise Fail(f"Your DAG has tasks for {len(built)} models, {len(extra)} of them not marts "
                   f"({short_list(extra)}). The staging and intermediate views are already "
                   f"built; only the {len(expected.marts)} models under models/marts should be "
                   'rebuilt: RenderConfig(select=["path:models/marts"]).')
    missing = set(expected.marts) - built
    if missing:
        raise Fail(f"Your DAG has no task for the mart{'s' if len(missing) > 1 else ''} "
                   f"{short_list(missing)}. Select every model under models/marts: "
                   'select=["path:models/marts"] (a path selects the folders below it too).')
    if not expected.model_tasks <= ids:
        grouped = any(t.endswith((".run", ".test")) for t in ids)
        how = ("each model is a task group with a `run` and a `test` task "
               "(TestBehavior.AFTER_EACH)" if grouped else
               "the models run without their tests in the same task")
        raise Fail(f"In your DAG {how}. Use test_behavior=TestBehavior.BUILD: one task per "
                   "model runs `dbt build` on it, the model and then its tests, so "
                   "fct_orders_model_build and the like.")
    unknown = ids - set(expected.upstream)
    if unknown:
        raise Fail(f"Your DAG has tasks that do not come from the marts: "
                   f"{short_list(unknown)}. Let Cosmos make the tasks from the manifest.")
    lost_tests = expected.test_tasks - ids
    if lost_tests:
        raise Fail(f"The tests on several marts ({short_list(lost_tests)}) have no task: keep "
                   "should_detach_multiple_parents_tests=True so that each runs once all "
                   "its models are built.")
    for task_id in sorted(expected.upstream):
        actual = set(tasks[task_id]["upstream"])
        if actual != expected.upstream[task_id]:
            want = short_list(expected.upstream[task_id]) or "nothing"
            raise Fail(f"{task_id} runs after {short_list(actual) or 'nothing'}; from the "
                       f"dbt project it should run after {want}. Do not add dependencies "
                       "by hand: Cosmos draws them from the refs.")
    schedule = dag.get("schedule")
    if schedule is None:
        raise Fail("Your DAG has no schedule (schedule=None: it runs only when someone "
                   'triggers it). Every day at 06:00 is schedule="0 6 * * *".')
    if not same_cron(schedule, SCHEDULE):
        words = f" ({dag['schedule_description']})" if dag.get("schedule_description") else ""
        raise Fail(f"Your DAG runs on {schedule!r}{words}; it should run every day at 06:00: "
                   'schedule="0 6 * * *" (minute 0, hour 6, any day, month and weekday).')
    retries = {t["retries"] for t in tasks.values()}
    if retries != {RETRIES}:
        shown = ", ".join(str(r) for r in sorted(retries))
        raise Fail(f"Your tasks retry {shown} time(s); every task should retry {RETRIES} "
                   f'times: default_args={{"retries": {RETRIES}, ...}} applies to all of them.')
    delays = {t["retry_delay_seconds"] for t in tasks.values()}
    if delays != {RETRY_DELAY_S}:
        shown = ", ".join(f"{d:g} s" for d in sorted(d for d in delays if d is not None))
        raise Fail(f"Your tasks wait {shown} before a retry; wait five minutes: "
                   'default_args={"retries": 2, "retry_delay": timedelta(minutes=5)}.')


def same_cron(expression: str, fields: tuple[str, ...]) -> bool:
    """A cron expression equals `fields`, ignoring leading zeros ("00 06 * * *")."""
    parts = expression.split()
    if len(parts) != len(fields):
        return False
    return all((str(int(p)) if p.isdigit() else p) == f for p, f in zip(parts, fields,
                                                                        strict=True))


def check_marts_dag(ctx: CheckContext) -> str:
    """The learner's DbtDag builds the marts (and only them) daily at 06:00 with two retries,
    one `dbt build` task per model; a dag.test() run of it succeeds."""
    text = ctx.learner_text()
    manifest = load_manifest_for_cosmos(ctx)
    expected = expected_dag(manifest)
    folder = Path(tempfile.mkdtemp(prefix="course-check-07-"))
    verdict: list[Fail] = []

    def run_if_right(inspection: DagInspection) -> bool:
        try:
            judge_structure(inspection.dag or {}, expected)
        except Fail as fail:
            verdict.append(fail)
            return False
        return True

    try:
        (folder / ctx.exercise.file).write_text(text, encoding="utf-8")
        proxy_upstream_views(ctx, expected)
        # Safe mode off: Airflow then imports the file even when it lacks the words "airflow"
        # and "dag", so that any error in it is reported rather than the file skipped.
        env = {"AIRFLOW__CORE__DAGS_FOLDER": str(folder), "DBT_SCHEMA": ctx.scratch,
               "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE": "False"}
        inspection = inspect_dag(DAG_ID, ctx.settings, extra_env=env, run_if=run_if_right,
                                 timeout=600)
        if inspection.import_errors:
            raise Fail(import_error_hint(ctx, inspection.import_errors))
        if inspection.dag is None:
            found = ", ".join(inspection.dag_ids)
            what = (f"the DAG(s) {found}, not {DAG_ID!r}" if found else
                    "no DAG that Airflow finds")
            raise Fail(f"{ctx.shown_file} defines {what}. Keep "
                       f'`marts_refresh = DbtDag(dag_id="{DAG_ID}", ...)` at module level.')
        if verdict:
            raise verdict[0]
        run = inspection.run
        if inspection.run_state != "success":
            failed = run.loc[run.state != "success", "task_id"].tolist()
            raise Fail(f"The DAG's structure is right, but its run ended "
                       f"{inspection.run_state}: {short_list(failed)} did not succeed. "
                       f"From the log:\n{dbt_errors(inspection.log, limit=8)}")
        marts_db = f"{ctx.scratch}_{expected.layers[expected.marts[0]]}"
        built = ctx.query(f"SELECT name, total_rows FROM system.tables "
                          f"WHERE database = '{marts_db}'")
        empty = set(expected.marts) - set(built.loc[built.total_rows > 0, "name"])
        if empty:
            raise Fail(f"The run succeeded but left {short_list(empty)} empty or missing: "
                       "keep the profile and project configs from cosmos_configs().")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        # dbt also creates the target schema itself, `check_07_marts_dag`, when it starts.
        for database in [ctx.scratch, *(f"{ctx.scratch}_{layer}"
                                        for layer in sorted(set(expected.layers.values())))]:
            ctx.drop_database(database)
    tests = len(expected.test_tasks)
    return (f"{DAG_ID}: {len(expected.marts)} marts, each built with its tests in one task, "
            f"and {tests} tests on several marts in tasks of their own; every day at 06:00, "
            f"{RETRIES} retries five minutes apart. dag.test() ran all {len(run)} tasks "
            "successfully.")


EXERCISES = (
    Exercise("07_marts_dag", "A Cosmos DAG that refreshes the marts every morning",
             "Airflow DAG", "07_marts_dag.py", check_marts_dag),
)
