"""Real dbt (dbt-clickhouse over HTTP) against the embedded ClickHouse server.

The fixture project in `tests/fixtures/dbt_http_project` is copied to a temporary folder, so
dbt's target/ and logs/ never land in the repository. Every run uses its own database
(dbt's "schema"), dropped afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

FIXTURE_PROJECT = Path(__file__).parent / "fixtures" / "dbt_http_project"
DBT = Path(sys.executable).parent / "dbt"
DBT_TIMEOUT_S = 300
PROJECT_NAME = "dbt_http_fixture"
MODELS = ("stg_orders", "customer_totals", "orders_append", "orders_delete_insert", "orders_latest")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class DbtProject:
    """A private copy of the fixture project, and how to run dbt on it."""

    project_dir: Path
    target_dir: Path
    log_dir: Path
    schema: str
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `dbt <args>` on this project and return the finished process."""
        cmd = [
            str(DBT),
            *args,
            "--project-dir",
            str(self.project_dir),
            "--profiles-dir",
            str(self.project_dir),
            "--target-path",
            str(self.target_dir),
            "--log-path",
            str(self.log_dir),
        ]
        return subprocess.run(
            cmd,
            cwd=self.project_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=DBT_TIMEOUT_S,
            check=False,
        )

    def run_ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run dbt and fail the test, showing dbt's output, unless it exits 0."""
        proc = self.run(*args)
        assert proc.returncode == 0, self.describe(proc)
        return proc

    def describe(self, proc: subprocess.CompletedProcess[str]) -> str:
        """What went wrong: the command, its exit code, its output and the end of dbt.log."""
        log_file = self.log_dir / "dbt.log"
        log_tail = log_file.read_text(errors="replace")[-8000:] if log_file.exists() else ""
        return (
            f"{' '.join(proc.args)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-8000:]}\n--- stderr ---\n{proc.stderr[-4000:]}\n"
            f"--- dbt.log (tail) ---\n{log_tail}"
        )

    def artifact(self, name: str) -> dict[str, Any]:
        """A JSON artifact of the last dbt command (run_results.json, catalog.json, ...)."""
        return json.loads((self.target_dir / name).read_text())


def _make_project(
    tmp_path_factory: pytest.TempPathFactory, settings: Any, label: str
) -> DbtProject:
    """Copy the fixture project into a fresh temporary folder with its own database."""
    root = tmp_path_factory.mktemp(f"dbt_{label}")
    project_dir = root / "project"
    shutil.copytree(FIXTURE_PROJECT, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    schema = f"dbt_{label}_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **settings.client_env(),
        "DBT_FIXTURE_SCHEMA": schema,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        "DBT_USE_COLORS": "false",
    }
    return DbtProject(project_dir, root / "target", root / "logs", schema, env)


@pytest.fixture
def dbt_project(
    tmp_path_factory: pytest.TempPathFactory, clickhouse_settings: Any, ch_client: Any
) -> Iterator[DbtProject]:
    """A fresh copy of the fixture project; its database is dropped afterwards."""
    project = _make_project(tmp_path_factory, clickhouse_settings, "http")
    yield project
    ch_client.command(f"DROP DATABASE IF EXISTS `{project.schema}`")


@pytest.fixture
def failing_project(
    tmp_path_factory: pytest.TempPathFactory, clickhouse_settings: Any, ch_client: Any
) -> Iterator[DbtProject]:
    """A copy of the fixture project with an extra singular test that always fails."""
    project = _make_project(tmp_path_factory, clickhouse_settings, "fail")
    (project.project_dir / "tests" / "assert_fails_on_purpose.sql").write_text(
        "-- Fails on purpose: every customer comes back as a failing row.\n"
        "select customer_id from {{ ref('customers') }}\n"
    )
    yield project
    ch_client.command(f"DROP DATABASE IF EXISTS `{project.schema}`")


def _count(ch_client: Any, schema: str, table: str, where: str = "1") -> int:
    """Exact row count of `schema.table` (optionally filtered), read through the server."""
    result = ch_client.query(f"SELECT count() FROM `{schema}`.`{table}` WHERE {where}")
    return int(result.result_rows[0][0])


def _rows(ch_client: Any, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query, as plain tuples."""
    return [tuple(row) for row in ch_client.query(sql).result_rows]


def _assert_all_succeeded(project: DbtProject, expected_types: set[str]) -> dict[str, str]:
    """Every node of the last command succeeded, and every node of `expected_types` ran.

    A test is expected only when all its parents are of an expected type (a test on a snapshot
    does not run when snapshots are excluded). Returns unique_id -> status.
    """
    results = project.artifact("run_results.json")["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    bad = {
        r["unique_id"]: (r["status"], r.get("message"))
        for r in results
        if r["status"] not in ("success", "pass")
    }
    assert not bad, f"dbt nodes did not succeed: {bad}"
    nodes = project.artifact("manifest.json")["nodes"]
    expected: set[str] = set()
    for uid, node in nodes.items():
        if node["package_name"] != PROJECT_NAME or node["resource_type"] not in expected_types:
            continue
        parents = [p for p in node["depends_on"].get("nodes", []) if p in nodes]
        if node["resource_type"] == "test" and any(
            nodes[p]["resource_type"] not in expected_types for p in parents
        ):
            continue
        expected.add(uid)
    missing = expected - statuses.keys()
    assert not missing, f"dbt did not run these nodes: {sorted(missing)}"
    return statuses


def test_dbt_build_incremental_snapshot_and_docs(dbt_project: DbtProject, ch_client: Any) -> None:
    """Build, reload incrementally, snapshot a change and generate docs, with exact counts."""
    schema = dbt_project.schema

    # --- load 1: seeds, view, table, three incremental models, snapshot, all tests ---
    dbt_project.run_ok("build")
    statuses = _assert_all_succeeded(dbt_project, {"seed", "model", "snapshot", "test"})
    assert statuses[f"test.{PROJECT_NAME}.assert_incremental_keys_unique"] == "pass"

    expected_1 = {
        "customers": 5,
        "orders": 10,
        "stg_orders": 6,
        "customer_totals": 5,
        "orders_append": 6,
        "orders_delete_insert": 6,
        "orders_latest": 6,
        "orders_snapshot": 6,
    }
    counts_1 = {table: _count(ch_client, schema, table) for table in expected_1}
    assert counts_1 == expected_1

    # dbt-clickhouse writes `partition by (country)`; ClickHouse keeps the parentheses.
    tables = {
        name: (engine, partition_key.strip("()"), sorting_key.strip("()"))
        for name, engine, partition_key, sorting_key in _rows(
            ch_client,
            "SELECT name, engine, partition_key, sorting_key FROM system.tables "
            f"WHERE database = '{schema}'",
        )
    }
    assert tables["stg_orders"][0] == "View"
    assert tables["customer_totals"] == ("MergeTree", "country", "customer_id")
    for model in ("orders_append", "orders_delete_insert", "orders_latest"):
        assert tables[model][0] == "MergeTree", tables[model]

    # Customers without (non-cancelled) orders get zeros, not missing rows.
    totals_1 = _rows(
        ch_client,
        f"SELECT customer_id, order_count, total_amount FROM `{schema}`.customer_totals "
        "ORDER BY customer_id",
    )
    assert totals_1 == [
        (1, 2, Decimal("30.50")),
        (2, 2, Decimal("21")),
        (3, 1, Decimal("42")),
        (4, 0, 0),
        (5, 0, 0),
    ]

    # --- load 2: orders 2 and 3 change, orders 7 and 8 arrive; the snapshot waits ---
    dbt_project.run_ok("build", "--vars", "{batch: 2}", "--exclude", "resource_type:snapshot")
    statuses = _assert_all_succeeded(dbt_project, {"seed", "model", "test"})
    assert not any(uid.startswith("snapshot.") for uid in statuses)

    expected_2 = {
        "stg_orders": 10,
        "customer_totals": 5,
        "orders_append": 10,  # append keeps both versions of orders 2 and 3
        "orders_delete_insert": 8,  # replaced orders 2 and 3, added 7 and 8
        "orders_latest": 8,  # same, via the default (legacy) strategy
        "orders_snapshot": 6,  # not run yet
    }
    counts_2 = {table: _count(ch_client, schema, table) for table in expected_2}
    assert counts_2 == expected_2

    versions_by_order = dict(
        _rows(
            ch_client,
            f"SELECT order_id, count() FROM `{schema}`.orders_append GROUP BY order_id "
            "ORDER BY order_id",
        )
    )
    assert versions_by_order == {1: 1, 2: 2, 3: 2, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1}

    latest_rows = [(1, 1, "shipped"), (2, 2, "shipped"), (3, 2, "returned"), (4, 1, "shipped")]
    latest_rows += [(5, 1, "cancelled"), (6, 1, "shipped"), (7, 2, "placed"), (8, 2, "placed")]
    for model in ("orders_delete_insert", "orders_latest"):
        rows = _rows(
            ch_client, f"SELECT order_id, batch, status FROM `{schema}`.{model} ORDER BY order_id"
        )
        assert rows == latest_rows, model

    totals_2 = _rows(
        ch_client,
        f"SELECT customer_id, order_count, total_amount FROM `{schema}`.customer_totals "
        "ORDER BY customer_id",
    )
    assert totals_2 == [
        (1, 2, Decimal("30.50")),
        (2, 2, Decimal("21")),
        (3, 2, Decimal("54")),
        (4, 0, 0),
        (5, 1, 30),
    ]

    # --- snapshot: orders 2 and 3 get a closed old version and a new current one ---
    dbt_project.run_ok("snapshot", "--vars", "{batch: 2}")
    statuses = _assert_all_succeeded(dbt_project, {"snapshot"})
    assert statuses == {f"snapshot.{PROJECT_NAME}.orders_snapshot": "success"}

    assert _count(ch_client, schema, "orders_snapshot") == 10
    assert _count(ch_client, schema, "orders_snapshot", "dbt_valid_to IS NULL") == 8
    closed = _rows(
        ch_client,
        "SELECT order_id, status, formatDateTime(dbt_valid_to, '%Y-%m-%d %H:%i:%S') "
        f"FROM `{schema}`.orders_snapshot "
        "WHERE dbt_valid_to IS NOT NULL ORDER BY order_id",
    )
    # A closed version ends when its successor's updated_at begins.
    assert closed == [(2, "placed", "2024-04-05 10:00:00"), (3, "placed", "2024-04-05 11:00:00")]
    current = _rows(
        ch_client,
        f"SELECT order_id, status FROM `{schema}`.orders_snapshot "
        "WHERE dbt_valid_to IS NULL AND order_id IN (2, 3) ORDER BY order_id",
    )
    assert current == [(2, "shipped"), (3, "returned")]

    # --- docs: the catalog describes every model, seed and snapshot, with their columns ---
    dbt_project.run_ok("docs", "generate", "--vars", "{batch: 2}")
    catalog = dbt_project.artifact("catalog.json")
    assert not catalog.get("errors"), catalog["errors"]
    nodes = catalog["nodes"]
    for name in MODELS:
        assert f"model.{PROJECT_NAME}.{name}" in nodes, sorted(nodes)
    assert f"seed.{PROJECT_NAME}.customers" in nodes
    assert f"snapshot.{PROJECT_NAME}.orders_snapshot" in nodes
    totals_columns = nodes[f"model.{PROJECT_NAME}.customer_totals"]["columns"]
    assert set(totals_columns) == {"customer_id", "name", "country", "order_count", "total_amount"}
    assert nodes[f"model.{PROJECT_NAME}.customer_totals"]["metadata"]["schema"] == schema
    assert (dbt_project.target_dir / "index.html").exists()


def test_failing_singular_test_fails_the_build(failing_project: DbtProject) -> None:
    """A singular test that returns rows makes `dbt build` exit non-zero and report the failure."""
    # cautious: skip the relationships tests that also need the (unbuilt) orders models.
    proc = failing_project.run(
        "build",
        "--select",
        "customers",
        "assert_fails_on_purpose",
        "--indirect-selection",
        "cautious",
    )
    assert proc.returncode == 1, failing_project.describe(proc)

    results = {r["unique_id"]: r for r in failing_project.artifact("run_results.json")["results"]}
    failing = results[f"test.{PROJECT_NAME}.assert_fails_on_purpose"]
    assert failing["status"] == "fail", failing
    assert failing["failures"] == 5, failing
    # Only the on-purpose test fails: the seed and its own tests are fine.
    others = {uid: r["status"] for uid, r in results.items() if uid != failing["unique_id"]}
    assert others[f"seed.{PROJECT_NAME}.customers"] == "success"
    assert set(others.values()) <= {"success", "pass"}, others
