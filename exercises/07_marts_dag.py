"""
Exercise 07: an Airflow DAG, rendered by Cosmos, that refreshes only the marts.

The analytics team wants the marts rebuilt every morning at 06:00 (UTC), before anyone opens
a dashboard, without the rest of the pipeline: the raw data, staging and intermediate views
are already there. Cosmos turns the dbt project into Airflow tasks. Tell it which models,
what to do with their tests, and when and how stubbornly to run. Complete the four TODOs:

  1. schedule: every day at 06:00 (a cron expression).
  2. default_args: every task retries twice, five minutes apart.
  3. RenderConfig(select=...): only the models under models/marts (a dbt selector).
  4. RenderConfig(test_behavior=...): one task per model that builds it and runs its tests
     (`dbt build`), so a model whose test fails stops the models downstream of it.

Rules: keep dag_id="marts_refresh" and the configs from `cosmos_configs()` (project, profile
and execution, the same as the analytics_pipeline DAG). Do not list task ids by hand: Cosmos
finds the models in dbt's manifest.

Check with `course check 07` (or `lesson.check("07")` in the notebook). The check parses this
file in a DAG folder of its own, compares the DAG with the dbt project, and runs it once with
dag.test() into scratch databases (about 30 s).
"""

from datetime import datetime, timedelta  # noqa: F401 - timedelta is yours to use

from cosmos import DbtDag, RenderConfig
from cosmos.constants import TestBehavior

from course.orchestration import cosmos_configs

configs = cosmos_configs()  # ProjectConfig, ProfileConfig, ExecutionConfig and operator_args

marts_refresh = DbtDag(
    dag_id="marts_refresh",
    # TODO 1: every day at 06:00 (minute hour day-of-month month day-of-week).
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    # TODO 2: retry every task twice, five minutes apart.
    default_args={"retries": 0},
    project_config=configs["project_config"],
    profile_config=configs["profile_config"],
    execution_config=configs["execution_config"],
    operator_args=configs["operator_args"],
    render_config=RenderConfig(
        # Read the models from dbt's manifest.json: no dbt process runs while Airflow parses.
        load_method=configs["render_config"].load_method,
        # TODO 3: select only the models under models/marts.
        # TODO 4: one `dbt build` task per model (the model, then its tests).
        test_behavior=TestBehavior.AFTER_EACH,
        # A test on several models (say, a reconciliation of two marts) gets a task of its
        # own that runs once all of them are built.
        should_detach_multiple_parents_tests=True,
    ),
    tags=["course", "exercise-07"],
)
