"""
### Connection check

The first DAG to run: it asks ClickHouse and PostgreSQL for their versions through the Airflow
connections `clickhouse_default` and `postgres_source`, which `course` creates from the same
settings as every other tool. If this DAG is green, the pipeline DAG can reach its data.
"""

from datetime import datetime

from airflow.sdk import dag, task

from course.orchestration import clickhouse_version, postgres_version, settings_from_connections


@dag(dag_id="connection_check", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
     tags=["course", "lesson-07"], doc_md=__doc__)
def connection_check():
    @task
    def clickhouse() -> str:
        return clickhouse_version(settings_from_connections())

    @task
    def postgres() -> str:
        return postgres_version(settings_from_connections())

    @task
    def report(clickhouse_version: str, postgres_version: str) -> dict[str, str]:
        versions = {"clickhouse": clickhouse_version, "postgres": postgres_version}
        print(f"both connections work: {versions}")
        return versions

    report(clickhouse(), postgres())


connection_check()
