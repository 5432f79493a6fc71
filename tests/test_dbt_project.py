"""The course's dbt project (dbt/clickhouse_analytics) against the session's embedded stack.

Every build here goes to private databases (DBT_SCHEMA=t_..., so `<schema>_staging`,
`<schema>_intermediate`, `<schema>_marts`), and dbt's target/ and logs/ go to temporary
folders: nothing lands in the repository or in the learner's databases. Tests that need bad or
changed raw data build on a scratch copy of the raw tables (the `raw_database` var), so the
shared sample data is never touched.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from course import dbt_tools
from course.dbt_tools import PROJECT_DIR, PROJECT_NAME, draw_lineage, lineage, parse_manifest
from course.loaders import load_all
from course.settings import Settings, load_settings

matplotlib.use("Agg")

pytestmark = pytest.mark.slow

LAYERS = ("staging", "intermediate", "marts")
RAW_TABLES = (
    "customers",
    "products",
    "orders",
    "order_items",
    "pg_user_activities",
    "pg_inventory",
    "pg_payment_transactions",
)
MIN_DATA_TESTS = 30


@dataclass(frozen=True)
class Build:
    """A private build of the project: its databases, artifacts folder and dbt runner."""

    settings: Settings
    schema: str
    target: Path
    logs: Path

    def run(self, *args: str, raw_database: str | None = None) -> subprocess.CompletedProcess:
        """`dbt <args>` into this build's databases (optionally on another raw database)."""
        extra = ["--vars", json.dumps({"raw_database": raw_database})] if raw_database else []
        return dbt_tools.run_dbt(
            [*args, *extra],
            self.settings,
            target_path=self.target,
            log_path=self.logs,
            schema=self.schema,
        )

    def run_ok(self, *args: str, raw_database: str | None = None) -> subprocess.CompletedProcess:
        """Like `run`, failing the test with dbt's output unless dbt exits 0."""
        proc = self.run(*args, raw_database=raw_database)
        assert proc.returncode == 0, self.describe(proc)
        return proc

    def describe(self, proc: subprocess.CompletedProcess) -> str:
        """The command, its exit code and the ends of its output and dbt.log."""
        log_file = self.logs / "dbt.log"
        log_tail = log_file.read_text(errors="replace")[-6000:] if log_file.exists() else ""
        return (
            f"{' '.join(proc.args)} exited {proc.returncode}\n--- stdout ---\n"
            f"{proc.stdout[-8000:]}\n--- stderr ---\n{proc.stderr[-3000:]}\n"
            f"--- dbt.log (tail) ---\n{log_tail}"
        )

    def artifact(self, name: str) -> dict[str, Any]:
        """A JSON artifact of the last command: manifest.json, run_results.json, catalog.json."""
        return json.loads((self.target / name).read_text())

    def database(self, layer: str) -> str:
        """The ClickHouse database of a layer in this build."""
        return f"{self.schema}_{layer}"


def _new_build(settings: Settings, tmp_path_factory: pytest.TempPathFactory, label: str) -> Build:
    root = tmp_path_factory.mktemp(f"dbt_{label}")
    return Build(settings, f"t_{label}_{uuid.uuid4().hex[:8]}", root / "target", root / "logs")


def _drop_build(ch_client: Any, build: Build) -> None:
    for layer in LAYERS:
        ch_client.command(f"DROP DATABASE IF EXISTS `{build.database(layer)}` SYNC")
    ch_client.command(f"DROP DATABASE IF EXISTS `{build.schema}` SYNC")


def _results(build: Build) -> dict[str, dict[str, Any]]:
    return {r["unique_id"]: r for r in build.artifact("run_results.json")["results"]}


def _project_nodes(manifest: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["package_name"] == PROJECT_NAME and node["resource_type"] == resource_type
    }


@pytest.fixture(scope="module")
def sample_build(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory, ch_client: Any
) -> Iterator[Build]:
    """The sample data loaded and the project built once with `dbt build` (a private build)."""
    load_all(stack_settings)
    build = _new_build(stack_settings, tmp_path_factory, "project")
    proc = build.run("build")
    assert proc.returncode == 0, build.describe(proc)
    yield build
    _drop_build(ch_client, build)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The manifest from `dbt parse` (parsing needs no database)."""
    home = tmp_path_factory.mktemp("dbt_parse_home")
    settings = dataclasses.replace(load_settings(), home=home)
    path = parse_manifest(settings)
    assert path == home / "dbt" / "target" / "manifest.json"
    return json.loads(path.read_text())


@pytest.fixture
def scratch_raw(ch_client: Any, sample_build: Build) -> Iterator[str]:
    """A private copy of the raw tables (same engines, same rows) to change freely."""
    name = f"raw_scratch_{uuid.uuid4().hex[:8]}"
    ch_client.command(f"CREATE DATABASE `{name}`")
    for table in RAW_TABLES:
        ch_client.command(f"CREATE TABLE `{name}`.{table} AS raw.{table}")
        ch_client.command(f"INSERT INTO `{name}`.{table} SELECT * FROM raw.{table}")
    yield name
    ch_client.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")


# --- lint and static checks (no database) ----------------------------------------------------


def test_sqlfluff_lint_has_no_violations() -> None:
    """sqlfluff (dialect clickhouse, jinja templater with dbt builtins) finds nothing."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sqlfluff",
            "lint",
            str(PROJECT_DIR / "models"),
            str(PROJECT_DIR / "tests"),
            "--format",
            "json",
            "--nofail",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    files = json.loads(proc.stdout)
    assert len(files) >= 20, [f["filepath"] for f in files]
    violations = [
        (f["filepath"], v["start_line_no"], v["code"], v["description"])
        for f in files
        for v in f["violations"]
    ]
    assert not violations, "\n".join(map(str, violations))


def test_sqlfluff_config_is_the_projects() -> None:
    """The lint runs with the project's own settings: ClickHouse dialect, dbt builtins."""
    config = (PROJECT_DIR / ".sqlfluff").read_text()
    assert re.search(r"^dialect = clickhouse$", config, re.M)
    assert re.search(r"^templater = jinja$", config, re.M)
    assert re.search(r"^apply_dbt_builtins = True$", config, re.M)


def test_enough_data_and_unit_tests(manifest: dict[str, Any]) -> None:
    """At least 30 data tests (generic and singular) and unit tests for the tricky logic."""
    tests = _project_nodes(manifest, "test")
    singular = [uid for uid, node in tests.items() if "test_metadata" not in node]
    kinds = {node["test_metadata"]["name"] for node in tests.values() if "test_metadata" in node}
    assert len(tests) >= MIN_DATA_TESTS, len(tests)
    assert {"unique", "not_null", "relationships", "accepted_values"} <= kinds, kinds
    assert len(singular) >= 4, singular
    unit_tests = {
        ut["model"] for ut in manifest["unit_tests"].values() if ut["package_name"] == PROJECT_NAME
    }
    assert {"int_payments_latest_per_order", "int_order_items_enriched"} <= unit_tests


def test_every_model_and_column_is_described(manifest: dict[str, Any]) -> None:
    """Every model, its columns, every source table and its columns have a description."""
    missing = []
    for uid, node in _project_nodes(manifest, "model").items():
        if not node["description"].strip():
            missing.append(uid)
        if not node["columns"]:
            missing.append(f"{uid}: no columns documented")
        missing += [
            f"{uid}.{name}"
            for name, col in node["columns"].items()
            if not col["description"].strip()
        ]
    for uid, source in manifest["sources"].items():
        if not source["description"].strip():
            missing.append(uid)
        missing += [
            f"{uid}.{name}"
            for name, col in source["columns"].items()
            if not col["description"].strip()
        ]
    assert not missing, missing


def test_layers_follow_the_structure_guide(manifest: dict[str, Any]) -> None:
    """7 staging views, one per source table; later layers read refs only; marts contracted."""
    models = _project_nodes(manifest, "model")
    by_layer: dict[str, dict[str, dict[str, Any]]] = {layer: {} for layer in LAYERS}
    for node in models.values():
        by_layer[node["fqn"][1]][node["name"]] = node

    staging = by_layer["staging"]
    assert len(staging) == 7, sorted(staging)
    sources = manifest["sources"]
    read = set()
    for name, node in staging.items():
        parents = node["depends_on"]["nodes"]
        assert len(parents) == 1 and parents[0].startswith("source."), (name, parents)
        source = sources[parents[0]]
        assert name == f"stg_{source['source_name']}__{source['name']}", name
        assert node["config"]["materialized"] == "view", name
        read.add(parents[0])
    assert read == {uid for uid, s in sources.items() if s["package_name"] == PROJECT_NAME}

    for layer in ("intermediate", "marts"):
        for name, node in by_layer[layer].items():
            assert not any(p.startswith("source.") for p in node["depends_on"]["nodes"]), name
    for name, node in by_layer["intermediate"].items():
        assert name.startswith("int_") and node["config"]["materialized"] in ("view", "ephemeral")
    assert {
        "int_order_items_enriched",
        "int_customer_orders",
        "int_payments_latest_per_order",
    } <= set(by_layer["intermediate"])

    marts = by_layer["marts"]
    assert {"dim_customers", "dim_products", "fct_orders", "daily_sales_summary"} <= set(marts)
    for name, node in marts.items():
        assert node["config"]["materialized"] in ("table", "incremental"), name
        assert node["config"]["contract"]["enforced"], name
        untyped = [c for c, col in node["columns"].items() if not col.get("data_type")]
        assert not untyped, (name, untyped)
    fct = marts["fct_orders"]["config"]
    assert (fct["materialized"], fct["engine"], fct["partition_by"]) == (
        "table",
        "MergeTree()",
        "toYYYYMM(order_date)",
    )
    incremental = [n for n in models.values() if n["config"]["materialized"] == "incremental"]
    assert incremental and all(n["config"]["incremental_strategy"] for n in incremental)


def test_lineage_picture_has_every_layer(manifest: dict[str, Any]) -> None:
    """draw_lineage lays the graph out in columns: sources, staging, intermediate, marts."""
    graph = lineage(manifest)
    assert len(graph.in_layer("sources")) == 7
    assert len(graph.in_layer("staging")) == 7
    fig = draw_lineage(manifest)
    texts = {t.get_text(): t.get_position() for t in fig.axes[0].texts}
    for layer in ("sources", "staging", "intermediate", "marts"):
        assert layer in texts, sorted(texts)
    x = {label: pos[0] for label, pos in texts.items()}
    assert x["sources"] < x["staging"] < x["intermediate"] < x["marts"]
    assert x["shop.orders"] < x["stg_shop__orders"] < x["int_orders_with_revenue"]
    assert x["int_orders_with_revenue"] < x["fct_orders"] < x["daily_sales_summary"]
    # Every dependency is an arrow.
    arrows = [a for a in fig.axes[0].texts if getattr(a, "arrow_patch", None) is not None]
    assert len(arrows) == len(graph.edges)
    import matplotlib.pyplot as plt

    plt.close(fig)


# --- a build on the sample data ---------------------------------------------------------------


def test_build_on_sample_data_passes_every_node(sample_build: Build) -> None:
    """`dbt build`: every model, data test and unit test of the project ran and passed."""
    results = _results(sample_build)
    bad = {
        uid: (r["status"], r.get("message"))
        for uid, r in results.items()
        if r["status"] not in ("success", "pass")
    }
    assert not bad, bad
    manifest = sample_build.artifact("manifest.json")
    expected = set(_project_nodes(manifest, "model")) | set(_project_nodes(manifest, "test"))
    expected |= {
        uid for uid, ut in manifest["unit_tests"].items() if ut["package_name"] == PROJECT_NAME
    }
    assert expected <= set(results), sorted(expected - set(results))
    tests_run = [uid for uid in results if uid.startswith("test.")]
    assert len(tests_run) >= MIN_DATA_TESTS


def _unwrap(expression: str) -> str:
    """A key expression without the one pair of parentheses dbt-clickhouse puts around it."""
    if expression.startswith("(") and expression.endswith(")"):
        return expression[1:-1]
    return expression


def test_marts_are_mergetree_tables_with_their_keys(sample_build: Build, ch_client: Any) -> None:
    """Staging and intermediate are views; marts are MergeTree tables with the stated keys."""
    rows = ch_client.query(
        "SELECT database, name, engine, partition_key, sorting_key FROM system.tables "
        "WHERE database IN {dbs:Array(String)}",
        parameters={"dbs": [sample_build.database(layer) for layer in LAYERS]},
    ).result_rows
    tables = {
        name: (db.rsplit("_", 1)[-1], engine, _unwrap(part), _unwrap(key))
        for db, name, engine, part, key in rows
    }
    assert sum(1 for t in tables.values() if t[0] == "staging") == 7
    for name, (layer, engine, _, _) in tables.items():
        if layer in ("staging", "intermediate"):
            assert engine == "View", name
        else:
            assert engine == "MergeTree", name
    assert tables["fct_orders"][2:] == ("toYYYYMM(order_date)", "order_date, order_id")
    assert tables["daily_sales_summary"][2:] == ("", "order_date")
    assert tables["dim_customers"][2:] == ("", "customer_id")


def test_sample_marts_hold_the_cleaned_data(sample_build: Build, ch_client: Any) -> None:
    """The wrinkles of the sample are cleaned: emails, a duplicated event, a retried payment,
    a product cost that is not known."""
    marts = sample_build.database("marts")

    def scalar(sql: str) -> Any:
        return ch_client.query(sql).result_rows[0][0]

    assert (
        scalar(f"SELECT count() FROM {marts}.dim_customers WHERE email != lower(trim(email))") == 0
    )
    # The totals data/README.md gives to check against: all lines, without cancelled orders,
    # net revenue (without the returned order too), margin with known costs, money received.
    assert ch_client.query(
        "SELECT sum(revenue), sumIf(revenue, status != 'cancelled'), sum(net_revenue), "
        f"sum(net_margin), sum(amount_paid) FROM {marts}.fct_orders"
    ).result_rows == [tuple(Decimal(n) for n in ("2310", "2200", "2000", "858", "745"))]
    # Customer 3's page view was recorded twice (activity ids 7 and 8): 3 events, not 4.
    assert scalar(f"SELECT activity_count FROM {marts}.dim_customers WHERE customer_id = 3") == 3
    # Order 1010: payment 5002 failed, 5003 succeeded five minutes later.
    assert ch_client.query(
        f"SELECT payment_status, amount_paid, payment_attempt_count FROM {marts}.fct_orders "
        "WHERE order_id = 1010"
    ).result_rows == [("succeeded", Decimal("120.00"), 2)]
    # Product 110's cost is unknown: no margin for it, and its revenue is set apart.
    assert ch_client.query(
        f"SELECT cost, unit_margin FROM {marts}.dim_products WHERE product_id = 110"
    ).result_rows == [(None, None)]
    assert scalar(
        f"SELECT unknown_cost_revenue FROM {marts}.fct_orders WHERE order_id = 1016"
    ) == Decimal("20.00")


def test_every_built_column_is_documented(sample_build: Build) -> None:
    """`dbt docs generate` works, and the yml documents exactly the columns each model has."""
    sample_build.run_ok("docs", "generate")
    catalog = sample_build.artifact("catalog.json")
    assert not catalog.get("errors"), catalog["errors"]
    assert (sample_build.target / "index.html").exists()
    manifest = sample_build.artifact("manifest.json")
    mismatched = {}
    for uid, node in _project_nodes(manifest, "model").items():
        built = {c.lower() for c in catalog["nodes"][uid]["columns"]}
        documented = {c.lower() for c in node["columns"]}
        if built != documented:
            mismatched[uid] = (sorted(built - documented), sorted(documented - built))
    assert not mismatched, mismatched


# --- incremental runs and failing data on a scratch copy of the raw tables -----------------------


def test_incremental_run_recomputes_a_changed_day(
    stack_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    ch_client: Any,
    scratch_raw: str,
) -> None:
    """An order returned after the first build changes its day in daily_sales_summary on the
    next (incremental, delete+insert) run; the other days stay as they were."""
    build = _new_build(stack_settings, tmp_path_factory, "incr")
    query = (
        f"SELECT toString(order_date), orders, returned_orders, net_revenue "
        f"FROM {build.database('marts')}.daily_sales_summary ORDER BY order_date"
    )
    try:
        build.run_ok("build", raw_database=scratch_raw)
        before = {r[0]: r[1:] for r in ch_client.query(query).result_rows}
        assert before["2024-01-02"] == (1, 0, Decimal("55.00"))

        ch_client.command(
            f"ALTER TABLE `{scratch_raw}`.orders UPDATE status = 'returned', "
            "updated_at = toDateTime('2024-03-01 12:00:00') WHERE order_id = 1001 "
            "SETTINGS mutations_sync = 2"
        )
        build.run_ok("build", raw_database=scratch_raw)
        results = _results(build)
        assert results[f"model.{PROJECT_NAME}.daily_sales_summary"]["status"] == "success"
        assert (
            results[f"test.{PROJECT_NAME}.assert_daily_sales_reconcile_with_fct_orders"]["status"]
            == "pass"
        )
        # The run took the incremental path: only the changed days were selected.
        compiled = next((build.target / "compiled").rglob("daily_sales_summary.sql")).read_text()
        assert "changed_days" in compiled

        after = {r[0]: r[1:] for r in ch_client.query(query).result_rows}
        assert after["2024-01-02"] == (1, 1, Decimal("0.00"))
        assert {d: v for d, v in after.items() if d != "2024-01-02"} == {
            d: v for d, v in before.items() if d != "2024-01-02"
        }
    finally:
        _drop_build(ch_client, build)


def test_bad_raw_rows_make_data_tests_fail(
    stack_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    ch_client: Any,
    scratch_raw: str,
) -> None:
    """Bad rows in the raw data (unknown status and customer, a duplicated order line) make
    exactly the tests that guard against them fail, and `dbt build` exit 1."""
    ch_client.command(
        f"INSERT INTO `{scratch_raw}`.orders VALUES "
        "(9001, 999, '2024-01-15 10:00:00', 'lost', '2024-01-15 10:00:00')"
    )
    ch_client.command(
        f"INSERT INTO `{scratch_raw}`.order_items "
        f"SELECT * FROM `{scratch_raw}`.order_items WHERE order_item_id = 1"
    )
    build = _new_build(stack_settings, tmp_path_factory, "bad")
    try:
        proc = build.run("build", raw_database=scratch_raw)
        assert proc.returncode == 1, build.describe(proc)
        failed = {
            uid.split(".")[2]
            for uid, r in _results(build).items()
            if r["status"] in ("fail", "error")
        }
        assert any(name.startswith("accepted_values_stg_shop__orders_status") for name in failed)
        assert any(name.startswith("relationships_stg_shop__orders_customer_id") for name in failed)
        assert any(name.startswith("unique_stg_shop__order_items_order_item_id") for name in failed)
        assert all(
            name.startswith(("accepted_values_", "relationships_", "unique_")) for name in failed
        ), failed
    finally:
        _drop_build(ch_client, build)
