"""dbt runs for the checks of lessons 03 to 06: a private copy of raw tables, and a dbt run
that reports each node's outcome instead of failing at the first error."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

from .harness import CheckContext, ScratchProject, dbt_errors
from .model import Fail


def copy_raw_tables(ctx: CheckContext, tables: Sequence[str]) -> str:
    """A fresh database `<scratch>_raw` holding copies (same engine, same rows) of `raw.<t>`
    for each table; the project's var `raw_database` points a build at it."""
    database = ctx.fresh_database(f"{ctx.scratch}_raw")
    for table in tables:
        ctx.client.command(f"CREATE TABLE `{database}`.`{table}` AS raw.`{table}`")
        ctx.client.command(f"INSERT INTO `{database}`.`{table}` SELECT * FROM raw.`{table}`")
    return database


def raw_vars(database: str) -> list[str]:
    """dbt arguments that read the sources from `database` instead of `raw`."""
    return ["--vars", json.dumps({"raw_database": database})]


def dbt_outcomes(project: ScratchProject, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                                dict[str, str]]:
    """Run dbt in the scratch project without failing on a non-zero exit; returns the process
    and each node's outcome from run_results.json, by name ("success", "error", "pass",
    "fail", "skipped", ...)."""
    proc = project.run(*args)
    results = project.root / "target" / "run_results.json"
    outcomes: dict[str, str] = {}
    if results.exists():
        for result in json.loads(results.read_text(encoding="utf-8")).get("results", []):
            outcomes[result["unique_id"].split(".")[-1]] = str(result["status"])
    return proc, outcomes


def require_model_built(proc: subprocess.CompletedProcess[str], outcomes: dict[str, str],
                        models: Sequence[str], what: str) -> None:
    """Fail with dbt's own error lines unless every model in `models` was built."""
    broken = [m for m in models if outcomes.get(m) != "success"]
    if broken:
        raise Fail(f"{what} failed. dbt says:\n{dbt_says(proc)}")


def dbt_says(proc: subprocess.CompletedProcess[str]) -> str:
    """dbt's error lines (with a broken contract's table of the columns that differ)."""
    return dbt_errors(proc.stdout + proc.stderr)


def failed_tests(outcomes: dict[str, str], models: Sequence[str]) -> list[str]:
    """The data tests that did not pass (everything but the models themselves)."""
    return sorted(name for name, status in outcomes.items()
                  if name not in models and status not in ("pass", "success"))
