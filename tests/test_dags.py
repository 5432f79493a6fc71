"""The DAGs: they parse cleanly, every task of every DAG succeeds under dag.test(), the task
set follows the dbt project, and failures are loud and name their cause."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from course.airflow_tools import DagRunFailed, dag_graph, parse_dags, run_dag_test
from course.dbt_tools import PROJECT_DIR, parse_manifest
from course.loaders import load_all
from course.stack.scratch import free_port


@pytest.fixture(scope="module")
def pipeline_ready(stack_settings):
    """The sample data loaded and the manifest Cosmos reads, as `course up airflow` makes it."""
    load_all(stack_settings)
    parse_manifest(stack_settings)
    return stack_settings


@pytest.fixture(scope="module")
def changed_project(tmp_path_factory, stack_settings, monkeypatch_module):
    """A copy of the dbt project with one more model and a data test that must fail."""
    copy = tmp_path_factory.mktemp("dbt") / "clickhouse_analytics"
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    (copy / "models" / "intermediate" / "int_orders_per_status.sql").write_text(
        "select status, count() as orders from {{ ref('stg_shop__orders') }} group by status\n")
    # On a branch the new model does not depend on, so that model still builds.
    (copy / "tests" / "assert_no_product_exists.sql").write_text(
        "-- fails on purpose: the sample data has products\n"
        "select product_id from {{ ref('dim_products') }}\n")
    parse_manifest(stack_settings, target_path=copy / "target", project_dir=copy)
    monkeypatch_module.setenv("COURSE_DBT_PROJECT_DIR", str(copy))
    return copy


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_dagbag_has_no_import_errors(pipeline_ready):
    bag = parse_dags(pipeline_ready)
    assert bag["import_errors"] == {}
    assert {"analytics_pipeline", "connection_check"} <= set(bag["dag_ids"])
    print(f"DAG folder parsed in {bag['seconds']:.2f} s")


def test_connection_check_succeeds(pipeline_ready):
    table = run_dag_test("connection_check", pipeline_ready)
    assert set(table.state) == {"success"}
    assert "26.9" in table.attrs["log"] and "18." in table.attrs["log"]


def test_analytics_pipeline_every_task_succeeds(pipeline_ready, ch_client):
    table = run_dag_test("analytics_pipeline", pipeline_ready)
    assert set(table.state) == {"success"}, table[table.state != "success"]
    tasks = set(table.task_id)
    assert {"preflight.clickhouse_answers", "ingest_stage.ingest_postgres", "summary"} <= tasks
    assert "dbt.fct_orders_model_build" in tasks
    # The marts the run built hold the sample's orders.
    assert ch_client.command("SELECT count() FROM marts.fct_orders") == 20


def test_tasks_follow_the_dbt_project(pipeline_ready, changed_project):
    tasks = {t["task_id"] for t in dag_graph("analytics_pipeline", pipeline_ready)["tasks"]}
    assert "dbt.int_orders_per_status_model_build" in tasks


def test_failing_dbt_test_fails_the_run_and_names_the_test(pipeline_ready, changed_project):
    with pytest.raises(DagRunFailed) as failure:
        run_dag_test("analytics_pipeline", pipeline_ready)
    failed = {t["task_id"] for t in failure.value.tasks if t["state"] == "failed"}
    # A test on one model runs in that model's build task (Cosmos's TestBehavior.BUILD).
    assert failed == {"dbt.dim_products_model_build"}, failed
    assert "assert_no_product_exists" in failure.value.log
    # The new model was built like the others: a model needs no DAG edit to be a task.
    states = {t["task_id"]: t["state"] for t in failure.value.tasks}
    assert states["dbt.int_orders_per_status_model_build"] == "success"


def test_preflight_fails_fast_when_clickhouse_is_down(pipeline_ready):
    down = dataclasses.replace(pipeline_ready, clickhouse_port=free_port())
    with pytest.raises(DagRunFailed) as failure:
        run_dag_test("analytics_pipeline", down)
    states = {t["task_id"]: t for t in failure.value.tasks}
    check = states["preflight.clickhouse_answers"]
    assert check["state"] == "failed" and check["tries"] == 1  # no retries for a dead service
    assert "does not answer" in failure.value.log and "course up" in failure.value.log
    assert states["ingest_stage.load_csv"]["state"] == "upstream_failed"


def test_dag_files_stay_small():
    for path in Path("airflow/dags").glob("*.py"):
        assert len(path.read_text().splitlines()) < 120, f"{path} does more than wire tasks"
