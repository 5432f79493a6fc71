"""Lesson 06, tests: a singular data test that passes on good data and catches a bad row.

A test earns its place only if it can fail. So the check runs the learner's test twice in a
scratch build: on the real data (it must pass), then with an order paid twice planted in the
scratch fct_orders (it must fail). The verdicts are dbt's own, read from run_results.json.
"""

from __future__ import annotations

from .dbt_checks import dbt_outcomes, dbt_says
from .harness import CheckContext, scratch_project, server_message
from .model import Exercise, Fail

TEST = "assert_paid_within_revenue"
PLANTED_ORDER = 999999


def compiled_rows(ctx: CheckContext, compiled: str, limit: int = 3) -> str:
    """The first rows the learner's compiled test returns, one per line, to show in a hint."""
    try:
        rows = ctx.query(f"SELECT * FROM ({compiled}) LIMIT {limit}")
    except Exception as exc:  # noqa: BLE001 - only an illustration for the hint
        return f"(could not show them: {server_message(exc)})"
    return "\n".join(", ".join(f"{k} = {v}" for k, v in row.items())
                     for row in rows.to_dict("records"))


def plant_bad_order(ctx: CheckContext, database: str) -> str:
    """Insert into the scratch fct_orders a copy of a paid order (the one with the most
    payment attempts) whose payment was counted twice; returns a description of it."""
    source = ctx.query(
        f"SELECT order_id, revenue FROM `{database}`.fct_orders WHERE amount_paid > 0 "
        "ORDER BY payment_attempt_count DESC, order_id LIMIT 1")
    if source.empty:
        raise Fail("fct_orders has no paid order to copy: load the sample data "
                   "(`course load`) and check again.")
    order_id, revenue = int(source.iloc[0]["order_id"]), float(source.iloc[0]["revenue"])
    ctx.client.command(
        f"INSERT INTO `{database}`.fct_orders SELECT * REPLACE ("
        f"toUInt64({PLANTED_ORDER}) AS order_id, amount_paid + revenue AS amount_paid) "
        # The filter sits in a subquery: ClickHouse lets the alias order_id of REPLACE shadow
        # the column in an outer WHERE.
        f"FROM (SELECT * FROM `{database}`.fct_orders WHERE order_id = {order_id})")
    paid = ctx.scalar(f"SELECT amount_paid FROM `{database}`.fct_orders "
                      f"WHERE order_id = {PLANTED_ORDER}")
    return (f"order {PLANTED_ORDER}, a copy of order {order_id} whose payment was counted "
            f"twice: revenue {revenue:.2f}, amount_paid {float(paid):.2f}")


def check_paid_within_revenue(ctx: CheckContext) -> str:
    """The learner's singular test passes on the real fct_orders and fails once an order
    paid more than its revenue is planted in it."""
    ctx.learner_text()
    ctx.require_tables("raw.orders", "raw.pg_payment_transactions", lesson="02")
    with scratch_project(ctx) as project:
        project.place(f"tests/{TEST}.sql")
        # Build what the test reads, then run only this test (`empty`: none of the models'
        # own tests, which the lessons already ran).
        proc, outcomes = dbt_outcomes(project, "build", "--select", f"+{TEST}",
                                      "--indirect-selection", "empty")
        status = outcomes.get(TEST)
        if status is None or status == "error" or any(
                s == "error" for name, s in outcomes.items() if name != TEST):
            raise Fail(f"dbt could not run your test. dbt says:\n{dbt_says(proc)}")
        compiled_path = (project.root / "target" / "compiled" / "clickhouse_analytics" /
                         "tests" / f"{TEST}.sql")
        compiled = compiled_path.read_text(encoding="utf-8") if compiled_path.exists() else ""
        if status != "pass":
            raise Fail(f"Your test {status}s on the real data, where every order is paid at "
                       "most its revenue (orders not paid yet have amount_paid 0; that is "
                       "fine). A test must pass on good data, or people learn to ignore it. "
                       f"It returned, for example:\n{compiled_rows(ctx, compiled)}")
        marts = project.database("marts")
        if not int(ctx.scalar(f"EXISTS TABLE `{marts}`.fct_orders")):
            raise Fail(f"Your test does not read fct_orders (dbt built no {marts}.fct_orders "
                       "for it): select from {{ ref('fct_orders') }}.")
        planted = plant_bad_order(ctx, marts)
        proc, outcomes = dbt_outcomes(project, "test", "--select", TEST)
        status = outcomes.get(TEST)
        if status == "pass":
            raise Fail(f"Your test passes even with a bad row planted in fct_orders: "
                       f"{planted}. It must return that row: keep only the orders whose "
                       "amount_paid is greater than their revenue.")
        if status == "warn":
            raise Fail(f"Your test only warns about the planted {planted}: a warning does not "
                       "stop `dbt build`. Leave the severity at error (the project's default).")
        if status != "fail":
            raise Fail(f"dbt could not run your test on the planted row. dbt says:\n"
                       f"{dbt_says(proc)}")
        caught = compiled_rows(ctx, compiled, limit=1)
    return (f"{TEST} passes on the real data and fails on the planted {planted}. It "
            f"returned: {caught}")


EXERCISES = (
    Exercise("06_assert_paid_within_revenue", "A data test that can fail", "dbt test",
             "06_assert_paid_within_revenue.sql", check_paid_within_revenue),
)
