"""The data generator: determinism, keys that agree, the sample's columns, and a generated set
loaded by the same loaders (then the sample is loaded again for the other tests)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from course import datagen
from course.datagen import Scale, generate
from course.loaders import ALL_FILES, DATA_DIR, load_all, validate_dataset

from conftest import course


def digests(folder: Path) -> dict[str, str]:
    return {spec.path: hashlib.sha256((folder / spec.path).read_bytes()).hexdigest()
            for spec in ALL_FILES}


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, keep_default_na=False, na_values={"cost": [""]})


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """2,000 orders in small chunks, so ids and keys cross chunk boundaries."""
    folder = tmp_path_factory.mktemp("generated")
    patch = pytest.MonkeyPatch()
    patch.setattr(datagen, "CHUNK_ORDERS", 300)
    patch.setattr(datagen, "CHUNK_ROWS", 170)
    try:
        rows = generate(folder, 2_000, seed=11)
    finally:
        patch.undo()
    return folder, rows


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    first = generate(tmp_path / "a", 3_000, seed=5)
    second = generate(tmp_path / "b", 3_000, seed=5)
    assert first == second
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    generate(tmp_path / "c", 3_000, seed=6)
    other = digests(tmp_path / "c")
    same = digests(tmp_path / "a")
    assert all(other[path] != same[path] for path in same)
    assert not list(tmp_path.rglob("*.part"))


def test_generated_files_have_the_sample_columns(generated):
    folder, _ = generated
    for spec in ALL_FILES:
        header = (folder / spec.path).read_text().splitlines()[0]
        assert header == (DATA_DIR / spec.path).read_text().splitlines()[0] \
            == ",".join(spec.names)


def test_generated_keys_agree(generated):
    folder, rows = generated
    customers, products = read(folder, "customers.csv"), read(folder, "products.csv")
    orders, items = read(folder, "orders.csv"), read(folder, "order_items.csv")
    events = read(folder, "postgres/user_activities.csv")
    stock = read(folder, "postgres/inventory.csv")
    payments = read(folder, "postgres/payment_transactions.csv")
    assert len(orders) == 2_000 and rows["orders.csv"] == 2_000
    for frame, key in [(customers, "customer_id"), (products, "product_id"),
                       (orders, "order_id"), (items, "order_item_id"),
                       (payments, "payment_id"), (events, "activity_id")]:
        assert frame[key].is_unique and frame[key].min() == 1
        assert frame[key].max() == len(frame)  # contiguous across chunks
    assert not stock.duplicated(["product_id", "warehouse"]).any()
    assert items.order_id.isin(orders.order_id).all()
    assert set(items.order_id) == set(orders.order_id)  # every order has lines
    assert items.product_id.isin(products.product_id).all()
    assert orders.customer_id.isin(customers.customer_id).all()
    assert payments.order_id.isin(orders.order_id).all()
    assert events.customer_id.isin(customers.customer_id).all()
    assert stock.product_id.isin(products.product_id).all()
    assert set(stock.product_id) == set(products.product_id)
    # Prices and payments add up like the sample's: a line's price is its product's, and a
    # payment is its order's total.
    priced = items.merge(products, on="product_id")
    assert (priced.unit_price == priced.price).all()
    cents = (items.quantity * (items.unit_price * 100).round() *
             (10_000 - (items.discount_pct * 100).round()))
    totals = ((cents.groupby(items.order_id).sum() + 5_000) // 10_000) / 100
    paid = payments[payments.status != "failed"].set_index("order_id")
    assert paid.index.is_unique
    assert (paid.amount - totals.reindex(paid.index)).abs().max() < 0.001
    unpaid = orders[orders.status.isin(["placed", "cancelled"])].order_id
    assert not payments.order_id.isin(unpaid).any()
    assert orders.order_ts.is_monotonic_increasing


def test_generated_set_has_the_wrinkles(tmp_path):
    generate(tmp_path, 20_000, seed=2)
    customers = read(tmp_path, "customers.csv")
    assert (customers.email != customers.email.str.strip().str.lower()).sum() > 20
    assert read(tmp_path, "products.csv").cost.isna().sum() > 0
    events = read(tmp_path, "postgres/user_activities.csv")
    assert events.duplicated(["customer_id", "activity_type", "page", "occurred_at"]).sum() > 100
    payments = read(tmp_path, "postgres/payment_transactions.csv")
    failed = payments[payments.status == "failed"].order_id
    assert len(failed) > 100
    assert payments[payments.order_id.isin(failed)].groupby("order_id").size().eq(2).all()


def test_scale_grows_with_orders():
    assert Scale.for_orders(20) == Scale(20, 15, 15)
    assert Scale.for_orders(1_000_000) == Scale(1_000_000, 200_000, 10_000)
    assert Scale.for_orders(100_000_000).products == 100_000


def test_generated_set_validates_with_the_generators_counts(generated):
    folder, rows = generated
    assert validate_dataset(folder) == rows


def test_generated_set_loads_with_exact_counts(generated, stack_settings, ch_client):
    folder, rows = generated
    try:
        result = load_all(stack_settings, folder)
        expected = {f"raw.{spec.table}": rows[spec.path] for spec in ALL_FILES[:4]}
        assert result.raw == expected
        assert result.source == {spec.table: rows[spec.path] for spec in ALL_FILES[4:]}
        assert result.ingested == {f"raw.pg_{spec.table}": rows[spec.path]
                                   for spec in ALL_FILES[4:]}
        for table, count in expected.items():
            assert int(ch_client.command(f"SELECT count() FROM {table}")) == count
        orphans = ch_client.command("SELECT count() FROM raw.order_items WHERE order_id NOT IN "
                                    "(SELECT order_id FROM raw.orders)")
        assert int(orphans) == 0
    finally:
        load_all(stack_settings)


def test_cli_generate_then_load(clickhouse_env, stack_settings, tmp_path):
    out = tmp_path / "set"
    try:
        proc = course(clickhouse_env, "data", "generate", "--orders", "500", "--seed", "3",
                      "--out", str(out))
        assert "wrote" in proc.stdout and "orders.csv" in proc.stdout
        first = digests(out)
        course(clickhouse_env, "data", "generate", "--orders", "500", "--seed", "3",
               "--out", str(out))
        assert digests(out) == first
        loaded = course(clickhouse_env, "load", "--data", str(out)).stdout
        assert "raw.orders" in loaded and " 500\n" in loaded
    finally:
        load_all(stack_settings)


def test_cli_generate_refuses_the_sample_folder_and_bad_sizes():
    env = dict(os.environ)
    proc = course(env, "data", "generate", "--orders", "10", "--out", str(DATA_DIR), check=False)
    assert proc.returncode == 2 and "sample data" in proc.stderr
    proc = course(env, "data", "generate", "--orders", "0", "--out", "/tmp/x", check=False)
    assert proc.returncode == 2 and "at least 1" in proc.stderr
