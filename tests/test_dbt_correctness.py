"""The marts' numbers, recomputed independently from the data files with pandas.

For each data set (the sample in data/, and a generated one with another seed) the files are
loaded with `load_all`, the project is built with `dbt build --full-refresh` into private
databases, and the key numbers of the marts are compared exactly (Decimal, not float) with the
same numbers computed here from the CSV files alone: revenue per day, orders and lifetime value
per customer, stock per product, payment status per order. At the end the sample data is loaded
again, so later tests see it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from course import dbt_tools
from course.datagen import generate
from course.loaders import DATA_DIR, load_all
from course.settings import Settings

pytestmark = pytest.mark.slow

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
NOT_REVENUE = {"cancelled", "returned"}
GENERATED_ORDERS = 5_000
GENERATED_SEED = 11
LAYERS = ("staging", "intermediate", "marts")


# --- the expected numbers, from the files alone ----------------------------------------------


def read_csv(path: Path) -> pd.DataFrame:
    """A data file as text columns: empty values stay '' (no NaN), nothing is converted."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def money(text: str) -> Decimal:
    return Decimal(text).quantize(CENT)


def dsum(values: Any) -> Decimal:
    """Exact sum of Decimals (pandas would go through float)."""
    return sum(values, ZERO)


@dataclass
class Expected:
    """The marts' key numbers as the data files imply them."""

    orders: dict[int, tuple[Decimal, Decimal, Decimal, Decimal]]  # revenue, net, margin, net mg
    daily: dict[str, tuple[int, int, int, int, Decimal, Decimal, Decimal, Decimal]]
    customers: dict[int, tuple[int, Decimal, str | None, str | None, int]]
    stock: dict[int, int]
    payments: dict[int, tuple[str, Decimal]]
    wrinkles: dict[str, int]  # how often each wrinkle the cleaning is for occurs


def expected_from_files(data_dir: Path) -> Expected:
    """Recompute the marts' key numbers from the CSV files of a data set, with pandas.

    The rules are the documented ones: line revenue = quantity * unit_price minus the discount
    rounded to the cent (half up); margin only where the product's cost is known; net revenue
    and margin leave out cancelled and returned orders; the daily numbers leave out cancelled
    orders; an order's payment status is its latest attempt that did not fail (else 'failed',
    or 'no_payment' without any); duplicated events (all columns but the id equal) count once.
    """
    customers = read_csv(data_dir / "customers.csv")
    products = read_csv(data_dir / "products.csv")
    orders = read_csv(data_dir / "orders.csv")
    items = read_csv(data_dir / "order_items.csv")
    inventory = read_csv(data_dir / "postgres" / "inventory.csv")
    payments = read_csv(data_dir / "postgres" / "payment_transactions.csv")
    activities = read_csv(data_dir / "postgres" / "user_activities.csv")

    cost = {
        int(p): (money(c) if c != "" else None)
        for p, c in zip(products["product_id"], products["cost"], strict=True)
    }

    # Order lines.
    quantity = items["quantity"].astype(int)
    gross = [q * money(p) for q, p in zip(quantity, items["unit_price"], strict=True)]
    discount = [
        (g * Decimal(d) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        for g, d in zip(gross, items["discount_pct"], strict=True)
    ]
    revenue = [g - d for g, d in zip(gross, discount, strict=True)]
    unit_cost = [cost[int(p)] for p in items["product_id"]]
    margin = [
        r - q * c if c is not None else None
        for r, q, c in zip(revenue, quantity, unit_cost, strict=True)
    ]
    lines = pd.DataFrame(
        {
            "order_id": items["order_id"].astype(int),
            "quantity": quantity,
            "revenue": revenue,
            "margin": margin,
        }
    )
    per_order = lines.groupby("order_id").agg(
        item_count=("quantity", "sum"),
        revenue=("revenue", dsum),
        margin=("margin", lambda m: dsum(v for v in m if v is not None)),
    )

    # Orders with their money (orders without lines have zeros).
    o = pd.DataFrame(
        {
            "order_id": orders["order_id"].astype(int),
            "customer_id": orders["customer_id"].astype(int),
            "order_ts": orders["order_ts"],
            "order_date": orders["order_ts"].str[:10],
            "status": orders["status"],
        }
    ).join(per_order, on="order_id")
    o["item_count"] = o["item_count"].fillna(0).astype(int)
    for column in ("revenue", "margin"):
        o[column] = [v if isinstance(v, Decimal) else ZERO for v in o[column]]
    counts = ~o["status"].isin(NOT_REVENUE)
    o["net_revenue"] = [r if c else ZERO for r, c in zip(o["revenue"], counts, strict=True)]
    o["net_margin"] = [m if c else ZERO for m, c in zip(o["margin"], counts, strict=True)]
    expected_orders = {
        int(row.order_id): (row.revenue, row.net_revenue, row.margin, row.net_margin)
        for row in o.itertuples()
    }

    # Per day: cancelled orders count in nothing but cancelled_orders.
    daily = {}
    for day, group in o.groupby("order_date"):
        sold = group[group["status"] != "cancelled"]
        returned = sold[sold["status"] == "returned"]
        daily[str(day)] = (
            len(sold),
            int((group["status"] == "cancelled").sum()),
            len(returned),
            int(sold["item_count"].sum()),
            dsum(sold["revenue"]),
            dsum(returned["revenue"]),
            dsum(group["net_revenue"]),
            dsum(group["net_margin"]),
        )

    # Per customer: orders that were not cancelled.
    placed = o[o["status"] != "cancelled"]
    by_customer = placed.groupby("customer_id").agg(
        order_count=("order_id", "count"),
        lifetime_value=("net_revenue", dsum),
        first_order_at=("order_ts", "min"),
        last_order_at=("order_ts", "max"),
    )
    events = activities.drop_duplicates(
        subset=["customer_id", "activity_type", "page", "occurred_at"]
    )
    activity_count = events["customer_id"].astype(int).value_counts().to_dict()
    expected_customers = {}
    for customer_id in customers["customer_id"].astype(int):
        activity = int(activity_count.get(customer_id, 0))
        if customer_id in by_customer.index:
            row = by_customer.loc[customer_id]
            expected_customers[customer_id] = (
                int(row["order_count"]),
                row["lifetime_value"],
                row["first_order_at"],
                row["last_order_at"],
                activity,
            )
        else:
            expected_customers[customer_id] = (0, ZERO, None, None, activity)

    # Stock: units summed over warehouses; products nobody counts have 0.
    units = (
        inventory.assign(
            q=inventory["quantity_on_hand"].astype(int), p=inventory["product_id"].astype(int)
        )
        .groupby("p")["q"]
        .sum()
    )
    stock = {int(p): int(units.get(int(p), 0)) for p in products["product_id"]}

    # Payments: the latest attempt that did not fail decides; failed only if all failed.
    pay = payments.assign(
        order_id=payments["order_id"].astype(int),
        payment_id=payments["payment_id"].astype(int),
        ok=payments["status"] != "failed",
        amount=[money(a) for a in payments["amount"]],
    )
    deciding = (
        pay.sort_values(["order_id", "ok", "created_at", "payment_id"])
        .groupby("order_id")
        .tail(1)
        .set_index("order_id")["status"]
    )
    paid = pay[pay["status"] == "succeeded"].groupby("order_id")["amount"].agg(dsum)
    expected_payments = {
        order_id: (str(deciding[order_id]), paid.get(order_id, ZERO))
        if order_id in deciding.index
        else ("no_payment", ZERO)
        for order_id in o["order_id"]
    }

    outcomes = pay.groupby("order_id")["status"].agg(set)
    wrinkles = {
        "messy emails": int(
            (customers["email"] != customers["email"].str.strip().str.lower()).sum()
        ),
        "unknown costs": sum(1 for c in cost.values() if c is None),
        "duplicated events": len(activities) - len(events),
        "retried payments": int(outcomes.map(lambda s: {"failed", "succeeded"} <= s).sum()),
    }
    return Expected(expected_orders, daily, expected_customers, stock, expected_payments, wrinkles)


# --- the built marts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltData:
    """A data set loaded and built: the expected numbers and the marts database."""

    name: str
    expected: Expected
    marts: str


@pytest.fixture(scope="module")
def correctness_schema(stack_settings: Settings, ch_client: Any) -> Iterator[str]:
    """Private databases for these builds; the sample data is loaded again at the end."""
    schema = f"t_correct_{uuid.uuid4().hex[:8]}"
    yield schema
    for layer in LAYERS:
        ch_client.command(f"DROP DATABASE IF EXISTS `{schema}_{layer}` SYNC")
    ch_client.command(f"DROP DATABASE IF EXISTS `{schema}` SYNC")
    load_all(stack_settings)


@pytest.fixture(scope="module", params=["sample", "generated"])
def built(
    request: pytest.FixtureRequest,
    stack_settings: Settings,
    correctness_schema: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> BuiltData:
    """Load one data set, build the project on it (full refresh), compute what to expect."""
    if request.param == "sample":
        data_dir = DATA_DIR
    else:
        data_dir = tmp_path_factory.mktemp("generated") / "data"
        generate(data_dir, GENERATED_ORDERS, seed=GENERATED_SEED)
    load_all(stack_settings, data_dir=data_dir)
    root = tmp_path_factory.mktemp(f"dbt_correct_{request.param}")
    # --full-refresh: the incremental daily summary must not keep days of another data set.
    proc = dbt_tools.run_dbt(
        ["build", "--full-refresh"],
        stack_settings,
        target_path=root / "target",
        log_path=root / "logs",
        schema=correctness_schema,
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    return BuiltData(request.param, expected_from_files(data_dir), f"{correctness_schema}_marts")


def rows(ch_client: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in ch_client.query(sql).result_rows]


# --- the comparisons ----------------------------------------------------------------------------


def test_the_data_set_is_the_one_loaded(built: BuiltData) -> None:
    """The generated set really is the other data set (and the sample is the sample)."""
    n = len(built.expected.orders)
    assert n == (20 if built.name == "sample" else GENERATED_ORDERS)


def test_revenue_per_day(built: BuiltData, ch_client: Any) -> None:
    """daily_sales_summary: orders, cancelled, returned, items, gross/returned/net revenue,
    net margin of every day."""
    actual = {
        r[0]: tuple(r[1:])
        for r in rows(
            ch_client,
            (
                "SELECT toString(order_date), orders, cancelled_orders, returned_orders, items, "
                "gross_revenue, returned_revenue, net_revenue, net_margin "
                f"FROM {built.marts}.daily_sales_summary"
            ),
        )
    }
    assert actual == built.expected.daily


def test_order_revenue_and_margin(built: BuiltData, ch_client: Any) -> None:
    """fct_orders: revenue, net revenue, margin and net margin of every order."""
    actual = {
        r[0]: tuple(r[1:])
        for r in rows(
            ch_client,
            (
                "SELECT order_id, revenue, net_revenue, margin, net_margin "
                f"FROM {built.marts}.fct_orders"
            ),
        )
    }
    assert actual == built.expected.orders


def test_orders_and_lifetime_value_per_customer(built: BuiltData, ch_client: Any) -> None:
    """dim_customers: order count, lifetime value, first and last order, activity count."""
    actual = {
        r[0]: tuple(r[1:])
        for r in rows(
            ch_client,
            (
                "SELECT customer_id, order_count, lifetime_value, "
                "formatDateTime(first_order_at, '%Y-%m-%d %H:%i:%S'), "
                "formatDateTime(last_order_at, '%Y-%m-%d %H:%i:%S'), activity_count "
                f"FROM {built.marts}.dim_customers"
            ),
        )
    }
    assert actual == built.expected.customers


def test_stock_per_product(built: BuiltData, ch_client: Any) -> None:
    """dim_products: units on hand summed over the warehouses, 0 where nobody counts."""
    actual = dict(
        rows(ch_client, f"SELECT product_id, stock_on_hand FROM {built.marts}.dim_products")
    )
    assert actual == built.expected.stock


def test_payment_status_per_order(built: BuiltData, ch_client: Any) -> None:
    """fct_orders: the payment status and the amount paid of every order."""
    actual = {
        r[0]: tuple(r[1:])
        for r in rows(
            ch_client,
            (f"SELECT order_id, payment_status, amount_paid FROM {built.marts}.fct_orders"),
        )
    }
    assert actual == built.expected.payments
    if built.name == "sample":
        # The failed-then-retried payment ends as succeeded.
        assert actual[1010] == ("succeeded", Decimal("120.00"))


def test_data_set_has_the_wrinkles(built: BuiltData) -> None:
    """Each data set has what the cleaning is for, so the comparisons above do test it."""
    missing = [name for name, count in built.expected.wrinkles.items() if count == 0]
    assert not missing, built.expected.wrinkles
    statuses = {status for status, _ in built.expected.payments.values()}
    assert {"succeeded", "refunded", "no_payment"} <= statuses, statuses
    assert sum(day[1] for day in built.expected.daily.values()) > 0  # cancelled orders
    assert sum(day[2] for day in built.expected.daily.values()) > 0  # returned orders
