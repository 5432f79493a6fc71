"""
### Analytics pipeline

Every day: check the stack, load the CSV files and pull new PostgreSQL rows into ClickHouse,
then build the dbt project `clickhouse_analytics` with Astronomer Cosmos (one task per model,
its tests right after it), and log what the marts hold.

| stage | what it does |
|---|---|
| `preflight` | ClickHouse answers (and its version); PostgreSQL is ready; the source tables exist |
| `ingest` | CSV files into `raw.*`; new or changed PostgreSQL rows into `raw.pg_*` |
| `dbt` | staging → intermediate → marts, each model followed by its tests |
| `summary` | row counts of the marts and how many dbt tasks of each kind passed |

The connections `clickhouse_default` and `postgres_source` come from the course settings.
"""

from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task, task_group
from cosmos import DbtTaskGroup

from course.loaders import ingest, load_csv_files
from course.orchestration import (
    check_source_tables,
    clickhouse_version,
    cosmos_configs,
    dbt_task_states,
    mart_counts,
    postgres_version,
    settings_from_connections,
)

DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,  # a busy laptop recovers; a broken pipeline still fails
    "execution_timeout": timedelta(minutes=20),
}
# Preflight fails fast: a service that is down needs `course up`, not retries.
PREFLIGHT = {"retries": 0, "execution_timeout": timedelta(seconds=60)}


@dag(dag_id="analytics_pipeline", schedule="@daily", start_date=datetime(2024, 1, 1),
     catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS, doc_md=__doc__,
     tags=["course", "lesson-07"])
def analytics_pipeline():
    @task_group
    def preflight():
        @task(**PREFLIGHT)
        def clickhouse_answers() -> str:
            return clickhouse_version(settings_from_connections())

        @task(**PREFLIGHT)
        def postgres_ready() -> str:
            return postgres_version(settings_from_connections())

        @task(**PREFLIGHT)
        def source_tables_exist() -> dict[str, int]:
            return check_source_tables(settings_from_connections())

        [clickhouse_answers(), postgres_ready()] >> source_tables_exist()

    @task_group
    def ingest_stage():
        @task
        def load_csv() -> dict[str, int]:
            return load_csv_files(settings_from_connections())

        @task
        def ingest_postgres() -> dict[str, int]:
            return ingest(settings_from_connections())

        load_csv() >> ingest_postgres()

    dbt = DbtTaskGroup(group_id="dbt", **cosmos_configs())

    @task
    def summary() -> dict:
        context = get_current_context()
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, task_group_id="dbt",
                                    run_ids=[ti.run_id])
        report = {"marts": mart_counts(settings_from_connections()),
                  "dbt_tasks": dbt_task_states(states)}
        print(f"pipeline summary: {report}")
        return report

    preflight() >> ingest_stage() >> dbt >> summary()


analytics_pipeline()
