"""Lesson 10, the capstone: a new mart, end to end. The learner writes the model and its yml;
the check builds and tests it in a scratch copy of the dbt project, compares its rows with
numbers computed from raw.*, checks how it is stored, and asks Airflow whether the Cosmos DAG
renders a task for it."""

from __future__ import annotations

import json
import re
import shutil
from decimal import Decimal
from typing import Any

import pandas as pd

from ..airflow_tools import dag_graph
from .harness import CheckContext, ScratchProject, compare_frames, dbt_errors, scratch_project
from .model import Exercise, Fail

MODEL = "fct_monthly_category_revenue"
MODEL_FILE = f"10_{MODEL}.sql"
YML_FILE = f"10_{MODEL}.yml"
# Where the files go in a copy of the project: beside daily_sales_summary, a metrics mart.
MODEL_PATH = f"models/marts/metrics/{MODEL}.sql"
YML_PATH = f"models/marts/metrics/_{MODEL}.yml"
NODE_ID = f"model.clickhouse_analytics.{MODEL}"
KEY = ["order_month", "category"]
DAG_ID = "analytics_pipeline"

# The answer, from the raw tables and nothing of the dbt project: a line's revenue is
# quantity * unit_price less the discount rounded to the cent (data/README.md).
LINES = """
SELECT
    toStartOfMonth(toDate(o.order_ts)) AS order_month,
    p.category AS category,
    lower(o.status) AS status,
    o.order_id AS order_id,
    i.quantity AS quantity,
    toDecimal64(i.unit_price, 2) * i.quantity AS gross,
    gross - toDecimal64(round(gross * i.discount_pct / 100, 2), 2) AS revenue
FROM raw.order_items AS i
INNER JOIN raw.orders AS o ON o.order_id = i.order_id
INNER JOIN raw.products AS p ON p.product_id = i.product_id
"""
EXPECTED = f"""
SELECT order_month, toString(category) AS category, uniqExact(order_id) AS orders,
       sum(quantity) AS units, toDecimal64(sum(revenue), 2) AS net_revenue
FROM ({LINES}) WHERE status NOT IN ('cancelled', 'returned')
GROUP BY order_month, category
"""
# Totals of the usual mistakes, to name the one the learner made.
VARIANTS = f"""
SELECT
    sumIf(revenue, status NOT IN ('cancelled', 'returned')) AS net,
    sum(revenue) AS every_order,
    sumIf(revenue, status != 'cancelled') AS with_returned,
    sumIf(revenue, status != 'returned') AS with_cancelled,
    sumIf(gross, status NOT IN ('cancelled', 'returned')) AS before_discount,
    countIf(status NOT IN ('cancelled', 'returned')) AS lines_kept,
    count() AS lines_all,
    sumIf(quantity, status NOT IN ('cancelled', 'returned')) AS units_kept,
    sum(quantity) AS units_all
FROM ({LINES})
"""


def read_yml(ctx: CheckContext) -> str:
    """The learner's yml (the model's contract, description and tests)."""
    path = ctx.folder / YML_FILE
    if not path.exists():
        shown = f"exercises/{YML_FILE}" if ctx.folder.name == "exercises" else str(path)
        raise Fail(f"{shown} does not exist: the model's contract, description and tests "
                   f"live in it. Restore the starter with `git checkout -- {shown}`.")
    return path.read_text(encoding="utf-8")


def build_hint(message: str) -> str:
    """dbt's failure, with a word on the errors this exercise tends to meet."""
    hints = []
    if "NOT_FOUND_COLUMN_IN_BLOCK" in message or "Not found column __table" in message:
        hints.append("This is a ClickHouse planner problem with a WHERE on top of a join of "
                     "views that join and group themselves (int_orders_with_revenue, say). "
                     "Join stg_shop__orders for the status instead, as the starter does.")
    if "contract" in message.lower() or "data type mismatch" in message.lower():
        hints.append("The contract in the yml fixes each column's name and type: cast in "
                     "the SQL (toUInt64(...), toDecimal64(..., 2)) until they agree, and keep "
                     "the columns in the yml's order.")
    if "depends on a node named" in message or "was not found" in message:
        hints.append("ref() names a model of the project: int_order_items_enriched, "
                     "stg_shop__orders, fct_orders, ...")
    return "\n".join([message, *hints])


def money(value: Any) -> str:
    return f"{Decimal(str(value)):,.2f}"


def check_results(ctx: CheckContext, actual: pd.DataFrame) -> None:
    """Fail with the likeliest mistake when the mart's rows differ from the expected ones."""
    expected = ctx.query(EXPECTED)
    missing = [c for c in expected.columns if c not in actual.columns]
    if missing:
        raise Fail(f"{MODEL} has no column {', '.join(missing)}; it has "
                   f"{', '.join(actual.columns)}. Keep the names of the contract.")
    actual = actual.assign(category=actual["category"].astype(str))
    months = pd.to_datetime(actual["order_month"])
    if (months.dt.day != 1).any():
        day = months[months.dt.day != 1].iloc[0].date()
        raise Fail(f"{MODEL} has an order_month of {day}: a month is named by its first "
                   "day, so group by toStartOfMonth(order_date).")
    totals = ctx.query(VARIANTS).iloc[0]
    revenue = Decimal(str(actual["net_revenue"].sum()))
    want = Decimal(str(totals["net"]))
    if abs(revenue - want) > Decimal("0.01"):
        if abs(revenue - Decimal(str(totals["every_order"]))) <= Decimal("0.01"):
            cause = ("cancelled and returned orders are counted: leave them out (their "
                     "status is in stg_shop__orders)")
        elif abs(revenue - Decimal(str(totals["with_returned"]))) <= Decimal("0.01"):
            cause = ("returned orders are counted: they gave their money back, so leave them "
                     "out too, not only the cancelled ones")
        elif abs(revenue - Decimal(str(totals["with_cancelled"]))) <= Decimal("0.01"):
            cause = "cancelled orders are counted: leave them out too"
        elif abs(revenue - Decimal(str(totals["before_discount"]))) <= Decimal("0.01"):
            cause = "that is the revenue before discounts: sum line_revenue, not gross_amount"
        else:
            cause = ("compare your joins and filters with the revenue rule: lines of orders "
                     "neither cancelled nor returned, after discounts")
        raise Fail(f"{MODEL} adds up to {money(revenue)} of net_revenue; expected "
                   f"{money(want)}: {cause}.")
    orders = int(actual["orders"].sum())
    want_orders = int(expected["orders"].sum())
    if orders != want_orders:
        if orders in (int(totals["lines_kept"]), int(totals["lines_all"])):
            cause = ("that is the number of order lines: count each order once per category "
                     "with uniqExact(order_id) (count(distinct order_id))")
        else:
            cause = "count the distinct orders of each month and category"
        raise Fail(f"The column orders adds up to {orders}; expected {want_orders}: {cause}.")
    units = int(actual["units"].sum())
    if units != int(expected["units"].sum()):
        raise Fail(f"The column units adds up to {units}; expected "
                   f"{int(expected['units'].sum())}: sum the quantity of the lines kept.")
    compare_frames(actual, expected, key=KEY, where=MODEL)


def check_storage(ctx: CheckContext, database: str) -> str:
    """The mart is a MergeTree table ordered for month and category filters; returns its
    sorting key."""
    found = ctx.query("SELECT engine, sorting_key FROM system.tables "
                      f"WHERE database = '{database}' AND name = '{MODEL}'")
    if found.empty:
        raise Fail(f"dbt reported success, but there is no {MODEL} in {database}. Did a "
                   "config() change the model's schema or alias? Leave both as they are.")
    engine, sorting_key = found.iloc[0]["engine"], found.iloc[0]["sorting_key"]
    if not engine.endswith("MergeTree"):
        raise Fail(f"{MODEL} is stored as {engine}. A mart is read all day: materialize it "
                   "as a table (materialized='table', engine='MergeTree()').")
    first = sorting_key.split(",")[0].strip() if sorting_key else ""
    if first not in KEY:
        shown = sorting_key or "tuple() (no order)"
        raise Fail(f"{MODEL} is ordered by {shown}. Dashboards filter it by month and by "
                   "category: order_by='(order_month, category)' lets the primary index skip "
                   "the rest.")
    return sorting_key


def check_documentation(project: ScratchProject) -> list[dict[str, Any]]:
    """The model has a description and a test on its grain (from dbt's manifest); returns
    its tests."""
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    node = manifest["nodes"].get(NODE_ID, {})
    description = (node.get("description") or "").strip()
    if not description or description.upper().startswith("TODO"):
        raise Fail(f"{MODEL} has no description yet: in {YML_FILE}, say what one row is and "
                   "which orders count. Others read it in dbt docs before they trust a number.")
    tests = [n for n in manifest["nodes"].values()
             if n.get("resource_type") == "test" and NODE_ID in n["depends_on"]["nodes"]]
    grain = [t for t in tests if (t.get("test_metadata") or {}).get("name")
             == "unique_combination_of_columns"
             and set((t["test_metadata"].get("kwargs") or {}).get("combination_of_columns",
                                                                   [])) == set(KEY)]
    if not grain:
        raise Fail(f"{MODEL} has {len(tests)} test(s), but none on its grain. Add to the "
                   f"model in {YML_FILE}:\n    data_tests:\n      - "
                   "unique_combination_of_columns:\n          arguments:\n            "
                   'combination_of_columns: ["order_month", "category"]')
    return tests


def dag_task(graph: dict[str, Any]) -> dict[str, Any]:
    """The Cosmos task that builds the model, or Fail."""
    tasks = [t for t in graph["tasks"] if t["task_id"].startswith(f"dbt.{MODEL}")
             and not t["task_id"].endswith("_test")]
    if not tasks:
        raise Fail(f"The DAG {DAG_ID} rendered from your project copy has no task for "
                   f"{MODEL}. Cosmos builds one task per model of dbt's manifest: is the "
                   "model enabled (no enabled=false in its config)?")
    return tasks[0]


def dbt_failure(output: str) -> str:
    """dbt's error lines, and the lines that explain a compilation or database error (the
    reason follows its header line)."""
    lines = [re.sub(r"^\S*\d\d:\d\d:\d\d(\.\d+)?\s+", "", line).rstrip()
             for line in output.splitlines()]
    reasons = []
    for number, line in enumerate(lines):
        if re.search(r"(Compilation|Database|Parsing|Runtime) Error", line):
            reasons += [text.strip() for text in lines[number + 1:number + 4]
                        if text.strip() and "compiled code at" not in text]
        elif line.strip().startswith("|") and "---" not in line:  # a contract's mismatches
            reasons.append(line.strip())
    noise = re.compile(r"partial parsing|Starting full parse")
    shown = [line for line in dict.fromkeys([*dbt_errors(output).splitlines(), *reasons])
             if not noise.search(line)]
    return "\n".join(shown[:16])


def run_results(project: ScratchProject) -> dict[str, dict[str, Any]]:
    """dbt's verdict per node of the last invocation (empty when it stopped before running)."""
    path = project.root / "target" / "run_results.json"
    if not path.exists():
        return {}
    return {r["unique_id"]: r for r in json.loads(path.read_text())["results"]}


def check_capstone(ctx: CheckContext) -> str:
    """Build, test and judge the learner's mart in a scratch copy of the project; then render
    the Cosmos DAG from that copy."""
    ctx.learner_text()
    yml = read_yml(ctx)
    ctx.require_tables("raw.orders", "raw.order_items", "raw.products", lesson="02")
    return build_and_judge(ctx, yml)


def build_and_judge(ctx: CheckContext, yml: str) -> str:
    """The check's work in a scratch copy of the project (removed afterwards)."""
    with scratch_project(ctx) as project:
        project.place(MODEL_PATH)
        (project.project_dir / YML_PATH).write_text(yml, encoding="utf-8")
        # One dbt invocation builds the model, everything upstream, and the tests whose
        # models are all built (cautious: not the relationships to models left out).
        proc = project.run("build", "--select", f"+{MODEL}", "--indirect-selection", "cautious")
        output = proc.stdout + proc.stderr
        results = run_results(project)
        if (results.get(NODE_ID) or {}).get("status") != "success":
            raise Fail(build_hint(f"Building your model (dbt build --select +{MODEL}) "
                                  f"failed. dbt says:\n{dbt_failure(output)}"))
        marts = project.database("marts")
        check_results(ctx, ctx.query(f"SELECT * FROM `{marts}`.`{MODEL}`"))
        sorting_key = check_storage(ctx, marts)
        tests = check_documentation(project)
        failed = [r for r in results.values() if r["status"] in ("fail", "error")]
        if failed:
            names = ", ".join(r["unique_id"].split(".")[2] for r in failed[:3])
            raise Fail(f"Your model builds and its numbers are right, but {len(failed)} "
                       f"test(s) failed: {names}. dbt says:\n{dbt_failure(output)}")
        # Cosmos reads the manifest from <project>/target when COURSE_DBT_PROJECT_DIR is set.
        target = project.project_dir / "target"
        target.mkdir(exist_ok=True)
        shutil.copy(project.root / "target" / "manifest.json", target / "manifest.json")
        try:
            graph = dag_graph(DAG_ID, ctx.settings,
                              {"COURSE_DBT_PROJECT_DIR": str(project.project_dir)})
        except RuntimeError as exc:
            problem = str(exc).strip().splitlines()
            raise Fail(f"Airflow could not render the DAG {DAG_ID} from your project copy:\n"
                       + "\n".join(problem[-6:])) from None
        task = dag_task(graph)
    upstream = ", ".join(u.removeprefix("dbt.") for u in task["upstream"]) or "nothing"
    return (f"{MODEL} builds as a MergeTree table ordered by ({sorting_key}), matches the "
            f"numbers computed from raw.*, and passes its {len(tests)} tests. The Cosmos DAG "
            f"renders the task {task['task_id']} after {upstream}, with no change to the DAG "
            "file.")


EXERCISES = (
    Exercise(f"10_{MODEL}", "Capstone: a monthly category revenue mart, end to end",
             "dbt model", MODEL_FILE, check_capstone),
)
