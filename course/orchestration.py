"""What the DAGs do, as plain functions: the DAG files only wire them together.

Tasks read the stack's addresses from the Airflow connections `clickhouse_default` and
`postgres_source`, which `course` sets from the same settings as everything else
(AIRFLOW_CONN_* variables), so the DAGs run unchanged in embedded and Docker mode.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
from pathlib import Path
from typing import Any

import psycopg

from .clients import clickhouse as client
from .settings import Settings, load_settings

log = logging.getLogger(__name__)

CLICKHOUSE_CONN_ID = "clickhouse_default"
POSTGRES_CONN_ID = "postgres_source"


class PreflightError(RuntimeError):
    """A service the pipeline needs is not there; the message says how to bring it up."""


def settings_from_connections() -> Settings:
    """The course settings with ClickHouse and PostgreSQL taken from the Airflow connections."""
    from airflow.sdk import BaseHook

    base = load_settings()
    ch = BaseHook.get_connection(CLICKHOUSE_CONN_ID)
    pg = BaseHook.get_connection(POSTGRES_CONN_ID)
    return dataclasses.replace(
        base,
        clickhouse_host=ch.host, clickhouse_port=int(ch.port), clickhouse_user=ch.login,
        clickhouse_password=ch.password or "",
        postgres_host=pg.host, postgres_port=int(pg.port), postgres_user=pg.login,
        postgres_password=pg.password or "", postgres_db=pg.schema,
    )


def clickhouse_version(settings: Settings, timeout: int = 3) -> str:
    """ClickHouse's version, or a PreflightError that says how to start it."""
    try:
        return client(settings, connect_timeout=timeout,
                      send_receive_timeout=30).command("SELECT version()")
    except Exception as exc:  # any client failure means the same to a learner
        raise PreflightError(
            f"ClickHouse at {settings.clickhouse_url} does not answer ({exc}). Start it with "
            "`course up`, then run the DAG again.") from None


def postgres_version(settings: Settings, timeout: int = 3) -> str:
    """PostgreSQL's version, or a PreflightError that says how to start it."""
    try:
        with psycopg.connect(settings.postgres_dsn(), connect_timeout=timeout) as conn:
            return conn.execute("SHOW server_version").fetchone()[0].split()[0]
    except psycopg.Error as exc:
        raise PreflightError(
            f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port} is not ready "
            f"({exc}). Start it with `course up`, then run the DAG again.") from None


# -- the analytics pipeline ---------------------------------------------------------------------

MART_TABLES = ("marts.dim_customers", "marts.dim_products", "marts.fct_orders",
               "marts.daily_sales_summary")


def dbt_project_dir() -> Path:
    """The dbt project the DAG renders; COURSE_DBT_PROJECT_DIR overrides it (tests, capstone)."""
    from .dbt_tools import PROJECT_DIR

    return Path(os.environ.get("COURSE_DBT_PROJECT_DIR", PROJECT_DIR))


def manifest_path(settings: Settings) -> Path:
    """The manifest Cosmos reads: where `course.dbt_tools.parse_manifest` writes it, or the
    target folder of the project COURSE_DBT_PROJECT_DIR names."""
    from .dbt_tools import default_target_path

    if "COURSE_DBT_PROJECT_DIR" in os.environ:
        return dbt_project_dir() / "target" / "manifest.json"
    return default_target_path(settings) / "manifest.json"


def freeze_heap(context: Any = None) -> None:
    """Move every live object out of the garbage collector's reach before a dbt task runs.

    Cosmos calls `gc.collect()` after each dbt invocation (to release the adapter's
    semaphores). In a process that holds Airflow, dbt and the DAG (about a million objects)
    that full collection took 0.5-1.5 s per task, as long as the dbt command itself. Frozen,
    the collection walks only what the dbt run created. A collection first, so that no
    garbage is frozen.
    """
    gc.collect()
    gc.freeze()


# For every Cosmos task. `--no-write-json`: dbt writes manifest.json twice and
# run_results.json once per invocation into Cosmos's throwaway copy of the project, a fifth to a
# third of a task's dbt time; nothing reads them back except Cosmos's OpenLineage step, so
# the tasks declare no Airflow assets (outlets). Pass/fail, and the name of a failing test,
# come from dbt's result object and log, as before.
DBT_OPERATOR_ARGS: dict[str, Any] = {
    "on_execute_callback": freeze_heap,
    "dbt_cmd_flags": ["--no-write-json"],
}


def cosmos_configs(settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for Cosmos's DbtTaskGroup: project, profile, execution and render.

    Parsing reads `manifest.json` (LoadMode.DBT_MANIFEST), which `course up airflow` and the
    tests produce with `dbt parse`: no dbt process runs while Airflow parses the DAG file.
    Without a manifest (a fresh Docker stack, say) Cosmos falls back to running `dbt ls`
    (LoadMode.DBT_LS), slower but equivalent.
    """
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import (
        ExecutionMode,
        InvocationMode,
        LoadMode,
        TestBehavior,
        TestIndirectSelection,
    )

    from .dbt_tools import PROFILES_DIR, PROJECT_NAME, dbt_executable

    settings = settings or load_settings()
    manifest = manifest_path(settings)
    use_manifest = manifest.exists()
    project = ProjectConfig(
        dbt_project_path=dbt_project_dir(), project_name=PROJECT_NAME,
        manifest_path=manifest if use_manifest else None,
        install_dbt_deps=False,  # the project has no packages; nothing to fetch
    )
    # The same profiles.yml as a learner's terminal: the HTTP driver and the CLICKHOUSE_*
    # settings, not Cosmos's ClickHouse mapping, whose default is the native port 9000.
    profile = ProfileConfig(profile_name=PROJECT_NAME, target_name="dev",
                            profiles_yml_filepath=PROFILES_DIR / "profiles.yml")
    # A test on several models (a reconciliation between two marts, say) runs once all of
    # them are built, in a task of its own, instead of after the first of them.
    execution = ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                invocation_mode=InvocationMode.DBT_RUNNER,
                                dbt_executable_path=dbt_executable(),
                                test_indirect_selection=TestIndirectSelection.CAUTIOUS)
    render = RenderConfig(load_method=LoadMode.DBT_MANIFEST if use_manifest else LoadMode.DBT_LS,
                          test_behavior=TestBehavior.BUILD,
                          should_detach_multiple_parents_tests=True)
    return {"project_config": project, "profile_config": profile,
            "execution_config": execution, "render_config": render,
            "operator_args": {**DBT_OPERATOR_ARGS,
                              "dbt_cmd_flags": list(DBT_OPERATOR_ARGS["dbt_cmd_flags"])}}


def check_source_tables(settings: Settings) -> dict[str, int]:
    """Row counts of the PostgreSQL source tables; a PreflightError names a missing one."""
    from .loaders import SOURCE_FILES

    counts = {}
    with psycopg.connect(settings.postgres_dsn(), connect_timeout=3) as conn:
        for spec in SOURCE_FILES:
            exists = conn.execute("SELECT to_regclass(%s)", (spec.table,)).fetchone()[0]
            if exists is None:
                raise PreflightError(
                    f"the source table {spec.table} is missing from PostgreSQL database "
                    f"{settings.postgres_db}. Load the course data with `course load`.")
            counts[spec.table] = conn.execute(
                psycopg.sql.SQL("SELECT count(*) FROM {}").format(
                    psycopg.sql.Identifier(spec.table))).fetchone()[0]
    return counts


def mart_counts(settings: Settings) -> dict[str, int]:
    """Row counts of the marts, for the run's summary."""
    ch = client(settings)
    return {table: int(ch.command(f"SELECT count() FROM {table}")) for table in MART_TABLES}


def dbt_task_states(states: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per kind of dbt task (run, test, seed, ...), how many ended in each state.

    `states` is what the task SDK's `ti.get_task_states(...)` returns: task ids to states,
    possibly nested under run ids.
    """
    flat: dict[str, Any] = {}
    for key, value in states.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    summary: dict[str, dict[str, int]] = {}
    for task_id, state in flat.items():
        if not task_id.startswith("dbt."):
            continue
        kind = task_id.rsplit(".", 1)[-1].split("_")[0]
        counts = summary.setdefault(kind, {})
        counts[str(state)] = counts.get(str(state), 0) + 1
    return summary
