"""Lesson 04, dbt intermediate: the business rule that decides an order's payment status.

The sample data has the failed-then-retried payment (order 1010), where "the newest attempt"
happens to be right. So the check adds two orders to its copy of the payments, one paid and
then hit by a stray failed attempt, one whose attempts all failed, builds the learner's
int_payments_latest_per_order on that copy and compares it with the rule applied in pandas.
"""

from __future__ import annotations

import pandas as pd

from .dbt_checks import copy_raw_tables, dbt_outcomes, raw_vars, require_model_built
from .harness import CheckContext, compare_frames, require_columns, scratch_project
from .model import Exercise, Fail

MODEL = "int_payments_latest_per_order"
STAGING = "stg_source__payment_transactions"
COLUMNS = ["order_id", "payment_id", "payment_status", "payment_method", "payment_amount",
           "amount_paid", "attempt_count", "failed_attempt_count", "last_attempt_at"]
# Orders the check adds to its copy of raw.pg_payment_transactions.
EXTRA_PAYMENTS = """
    (90011, 9001, 50.00, 'card', 'succeeded', '2024-01-20 10:00:00', '2024-01-20 10:00:00'),
    (90012, 9001, 50.00, 'card', 'failed', '2024-01-20 10:30:00', '2024-01-20 10:30:05'),
    (90021, 9002, 35.00, 'card', 'failed', '2024-01-21 12:00:00', '2024-01-21 12:00:04'),
    (90022, 9002, 35.00, 'paypal', 'failed', '2024-01-21 12:04:00', '2024-01-21 12:04:06')
"""
RULE = ("The deciding attempt is the latest attempt that did not fail (by created_at, then the "
        "higher payment_id); only when every attempt failed is the order 'failed'.")


def expected_payments(payments: pd.DataFrame) -> pd.DataFrame:
    """One row per order, the business rule applied to its attempts in pandas."""
    rows = []
    for order_id, attempts in payments.groupby("order_id"):
        attempts = attempts.sort_values(["created_at", "payment_id"])
        not_failed = attempts[attempts["status"] != "failed"]
        deciding = (not_failed if len(not_failed) else attempts).iloc[-1]
        rows.append({
            "order_id": order_id,
            "payment_id": deciding["payment_id"],
            "payment_status": deciding["status"],
            "payment_method": deciding["method"],
            "payment_amount": deciding["amount"],
            "amount_paid": sum(float(a) for a, s in zip(attempts["amount"], attempts["status"],
                                                        strict=True) if s == "succeeded"),
            "attempt_count": len(attempts),
            "failed_attempt_count": int((attempts["status"] == "failed").sum()),
            "last_attempt_at": attempts["created_at"].max(),
        })
    return pd.DataFrame(rows)


def describe_attempts(payments: pd.DataFrame, order_id: int) -> str:
    """"5002 card failed 120.00 at 2024-01-14 09:31, 5003 paypal succeeded ..." for an order."""
    attempts = payments[payments["order_id"] == order_id].sort_values(["created_at",
                                                                       "payment_id"])
    return "; ".join(f"{a.payment_id} {a.method} {a.status} {float(a.amount):.2f} at "
                     f"{pd.Timestamp(a.created_at):%Y-%m-%d %H:%M}"
                     for a in attempts.itertuples())


def rule_hint(actual: pd.DataFrame, expected: pd.DataFrame, payments: pd.DataFrame) -> None:
    """Fail naming the first order whose deciding attempt or amount paid breaks the rule."""
    merged = expected.merge(actual[COLUMNS], on="order_id", suffixes=("", "_yours"))
    merged = merged.sort_values("order_id")
    for row in merged.itertuples():
        if (int(row.payment_id_yours), str(row.payment_status_yours)) == \
                (int(row.payment_id), str(row.payment_status)):
            continue
        if row.payment_status != "failed" and row.payment_status_yours == "failed":
            why = ("A failed attempt never undoes a payment: sort the attempts that did not "
                   "fail first (payment_status != 'failed' desc), then the newest.")
        elif row.payment_status == "failed":
            why = "Every attempt failed, so the newest failed attempt decides."
        else:
            why = RULE
        raise Fail(f"Order {row.order_id} ends as {row.payment_status_yours!r} (attempt "
                   f"{row.payment_id_yours}); expected {row.payment_status!r} (attempt "
                   f"{row.payment_id}). Its attempts: "
                   f"{describe_attempts(payments, row.order_id)}. {why}")
    for row in merged.itertuples():
        if abs(float(row.amount_paid_yours) - float(row.amount_paid)) > 0.005:
            raise Fail(f"Order {row.order_id}'s amount_paid is {float(row.amount_paid_yours):.2f}"
                       f"; expected {float(row.amount_paid):.2f}. Its attempts: "
                       f"{describe_attempts(payments, row.order_id)}. Only succeeded attempts "
                       "are money received: a failed one moved nothing and a refunded one gave "
                       "it back (sumIf(amount, payment_status = 'succeeded')).")


def check_payments_latest(ctx: CheckContext) -> str:
    """The learner's int_payments_latest_per_order applies the payment rule to every order of
    raw.pg_payment_transactions plus two planted orders."""
    ctx.learner_text()
    ctx.require_tables("raw.pg_payment_transactions", lesson="02")
    raw_database = copy_raw_tables(ctx, ["pg_payment_transactions"])
    try:
        ctx.client.command(f"INSERT INTO `{raw_database}`.pg_payment_transactions "
                           "(payment_id, order_id, amount, method, status, created_at, "
                           f"updated_at) VALUES {EXTRA_PAYMENTS}")
        payments = ctx.query(f"SELECT * FROM `{raw_database}`.pg_payment_transactions FINAL")
        expected = expected_payments(payments)
        with scratch_project(ctx) as project:
            project.place(f"models/intermediate/{MODEL}.sql")
            proc, outcomes = dbt_outcomes(project, "run", "--select", f"+{MODEL}",
                                          *raw_vars(raw_database))
            require_model_built(proc, outcomes, [STAGING, MODEL], f"Building {MODEL}")
            actual = ctx.query(f"SELECT * FROM `{project.database('intermediate')}`.`{MODEL}`")
        where = f"Your {MODEL}"
        require_columns(actual, COLUMNS, where)
        compare_frames(actual, expected[["order_id"]], ["order_id"], where)
        rule_hint(actual, expected, payments)
        compare_frames(actual, expected, ["order_id"], where)
    finally:
        ctx.drop_database(raw_database)
    retried = expected[(expected["attempt_count"] > 1)]
    return (f"{MODEL} decides all {len(expected)} orders right, {len(retried)} of them with "
            "several attempts (a retry after a failure, a stray failure after a payment, "
            "every attempt failed), and counts only succeeded attempts as paid.")


EXERCISES = (
    Exercise("04_int_payments_latest_per_order", "Decide each order's payment status",
             "dbt model", "04_int_payments_latest_per_order.sql", check_payments_latest),
)
