"""Synthetic data sets of any size, in the same 7 files and columns as the sample in data/.

`course data generate --orders N [--seed S] --out DIR`. Orders are made in chunks of
CHUNK_ORDERS with numpy, each chunk with its lines, payments and events, turned into Arrow
columns and appended to the CSV files, so memory stays flat as N grows. Every chunk draws from
its own random stream, seeded by (seed, table, chunk): the same seed and N give the same bytes.

Keys agree as in the sample: order lines point to orders and products, orders to customers,
payments to orders, events to customers, stock rows to products. The sample's wrinkles recur
at small rates: emails in mixed case with stray spaces, products whose cost is not known yet
(empty), events recorded twice, and payments that failed and were retried.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .loaders.schema import (
    ACTIVITY_TYPES,
    CUSTOMERS,
    DATA_DIR,
    INVENTORY,
    ORDER_ITEMS,
    ORDER_STATUSES,
    ORDERS,
    PAYMENT_METHODS,
    PAYMENT_STATUSES,
    PAYMENT_TRANSACTIONS,
    PRODUCTS,
    USER_ACTIVITIES,
    DataFile,
)

CHUNK_ORDERS = 50_000  # part of the output's identity: the random streams are per chunk
CHUNK_ROWS = 100_000  # customers and products per chunk
BATCH_ROWS = 16_384  # rows the CSV writer formats at a time (its default, 1024, is slower)
YEAR_START = 1_704_067_200  # 2024-01-01 00:00:00 UTC: generated orders span the year 2024
YEAR_SECONDS = 366 * 86_400
DAY = 86_400
# One random stream per table, so changing how one table is drawn leaves the others alone.
STREAM = {"customers": 1, "products": 2, "orders": 3, "order_items": 4, "payments": 5,
          "activities": 6, "inventory": 7}

FIRST_NAMES = [("Anna", "anna"), ("Lukas", "lukas"), ("Sophie", "sophie"), ("Camille", "camille"),
               ("Hugo", "hugo"), ("Emily", "emily"), ("Michael", "michael"), ("Olivia", "olivia"),
               ("James", "james"), ("Oliver", "oliver"), ("Amelia", "amelia"),
               ("Lucía", "lucia"), ("Javier", "javier"), ("Yuki", "yuki"), ("Haruto", "haruto"),
               ("Mia", "mia"), ("Noah", "noah"), ("Léa", "lea"), ("Jonas", "jonas"),
               ("Sofia", "sofia"), ("Mateo", "mateo"), ("Emma", "emma"), ("Liam", "liam"),
               ("Hana", "hana"), ("Ren", "ren"), ("Chloé", "chloe"), ("Ethan", "ethan"),
               ("Isla", "isla"), ("Marta", "marta"), ("Felix", "felix")]
LAST_NAMES = [("Schmidt", "schmidt"), ("Müller", "mueller"), ("Wagner", "wagner"),
              ("Dubois", "dubois"), ("Martin", "martin"), ("Johnson", "johnson"),
              ("Brown", "brown"), ("Davis", "davis"), ("Wilson", "wilson"), ("Smith", "smith"),
              ("Jones", "jones"), ("García", "garcia"), ("López", "lopez"),
              ("Tanaka", "tanaka"), ("Sato", "sato"), ("Fischer", "fischer"),
              ("Bernard", "bernard"), ("Taylor", "taylor"), ("Evans", "evans"),
              ("Martínez", "martinez"), ("Suzuki", "suzuki"), ("Weber", "weber"),
              ("Moreau", "moreau"), ("Miller", "miller"), ("Walker", "walker")]
# (country, city, weight): the sample's six countries, more shoppers where the shop is bigger.
LOCATIONS = [("United States", "New York", 8), ("United States", "Chicago", 5),
             ("United States", "Austin", 4), ("United States", "Seattle", 4),
             ("Germany", "Berlin", 6), ("Germany", "Munich", 4), ("Germany", "Hamburg", 4),
             ("France", "Paris", 6), ("France", "Lyon", 3), ("United Kingdom", "London", 6),
             ("United Kingdom", "Manchester", 3), ("Spain", "Madrid", 4),
             ("Spain", "Barcelona", 4), ("Japan", "Tokyo", 5), ("Japan", "Osaka", 3)]
DOMAINS = ["example.com", "mail.example.net", "shop-mail.example.org"]
# (category, nouns, typical price in whole units): the sample's three categories.
CATEGORIES = [
    ("Electronics", ["Wireless Mouse", "Keyboard", "USB-C Hub", "Headphones", "Monitor",
                     "Webcam", "Speaker", "Charger"], 60),
    ("Home", ["Coffee Maker", "Knife Set", "Frying Pan", "Desk Lamp", "Cutting Board",
              "Kettle", "Throw Blanket", "Vase"], 35),
    ("Books", ["Guide to SQL", "Data Pipelines", "Statistics Primer", "Dashboard Design",
               "Python Cookbook", "Analytics Handbook"], 25),
]
ADJECTIVES = ["Compact", "Classic", "Pro", "Everyday", "Deluxe", "Essential", "Smart", "Travel"]
WAREHOUSES = ["Berlin", "Newark", "Osaka"]


@dataclass(frozen=True)
class Scale:
    """How the other tables grow with the number of orders."""

    orders: int
    customers: int
    products: int

    @classmethod
    def for_orders(cls, orders: int) -> Scale:
        # About 5 orders per customer and 100 per product, never fewer than the sample's 15.
        return cls(orders, max(15, orders // 5), max(15, min(100_000, orders // 100)))


def rng(seed: int, table: str, chunk: int) -> np.random.Generator:
    return np.random.default_rng([seed, STREAM[table], chunk])


def chunks(total: int, size: int) -> Iterator[tuple[int, int, int]]:
    """(index, start, stop) of each chunk of `range(total)`."""
    for index, start in enumerate(range(0, total, size)):
        yield index, start, min(start + size, total)


# --- Arrow columns from numpy arrays -------------------------------------------------------

def money(cents: np.ndarray, precision: int = 10, valid: np.ndarray | None = None) -> pa.Array:
    """Decimal(precision, 2) from integer cents, built from the bytes: exact and fast.

    Decimal128 stores the unscaled value as a 16-byte little-endian integer; our values are
    non-negative, so the high 8 bytes are 0.
    """
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    mask = None if valid is None else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.decimal128(precision, 2), len(cents),
                                 [mask, pa.py_buffer(words)],
                                 null_count=-1 if valid is not None else 0)


def seconds(values: np.ndarray, utc: bool = False) -> pa.Array:
    """Timestamps from epoch seconds; `utc` adds a Z for the timestamptz files.

    The Z is appended to the text of a naive timestamp: formatting a UTC-zoned Arrow column
    goes through the time zone database and is about 30 times slower.
    """
    stamps = pa.array(values.astype(np.int64), type=pa.timestamp("s"))
    return join(pc.cast(stamps, pa.string()), "Z") if utc else stamps


def pick(vocabulary: list[str], index: np.ndarray) -> pa.Array:
    return pa.array(vocabulary).take(pa.array(index))


def text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def weighted(r: np.random.Generator, values: list[int] | np.ndarray, weights: list[float],
             size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return np.asarray(values)[r.choice(len(p), size=size, p=p / p.sum())]


# --- the tables -------------------------------------------------------------------------------

def customer_chunks(seed: int, scale: Scale) -> Iterator[pa.Table]:
    for index, start, stop in chunks(scale.customers, CHUNK_ROWS):
        r = rng(seed, "customers", index)
        n = stop - start
        ids = np.arange(start + 1, stop + 1)
        first = r.integers(0, len(FIRST_NAMES), n)
        last = r.integers(0, len(LAST_NAMES), n)
        place = weighted(r, np.arange(len(LOCATIONS)), [w for *_, w in LOCATIONS], n)
        domain = pick(DOMAINS, r.integers(0, len(DOMAINS), n))
        first_slug = pick([s for _, s in FIRST_NAMES], first)
        last_slug = pick([s for _, s in LAST_NAMES], last)
        clean = join(first_slug, ".", last_slug, text(ids), "@", domain)
        # Wrinkle (1 in 40): typed in by hand, in mixed case with stray spaces.
        messy = join(" ", pc.utf8_capitalize(first_slug), ".", pc.utf8_capitalize(last_slug),
                     text(ids), "@", pc.utf8_upper(domain), " ")
        email = pc.if_else(pa.array(r.random(n) < 0.025), messy, clean)
        signup = r.integers(18_628, 19_723, n)  # 2021-01-01 .. 2023-12-31, in days
        touched = signup * DAY + r.integers(6 * 3600, 22 * 3600, n)
        touched += np.where(r.random(n) < 0.2, r.integers(0, 300 * DAY, n), 0)
        yield pa.table({
            "customer_id": ids, "first_name": pick([f for f, _ in FIRST_NAMES], first),
            "last_name": pick([la for la, _ in LAST_NAMES], last), "email": email,
            "country": pick([c for c, _, _ in LOCATIONS], place),
            "city": pick([c for _, c, _ in LOCATIONS], place),
            "signup_date": pa.array(signup.astype(np.int32), type=pa.date32()),
            "updated_at": seconds(touched)})


def product_prices(seed: int, scale: Scale) -> tuple[np.ndarray, np.ndarray]:
    """Category index and price in cents of every product (small: at most 100,000)."""
    r = rng(seed, "products", 0)
    category = r.integers(0, len(CATEGORIES), scale.products)
    typical = np.array([c[2] for c in CATEGORIES])[category]
    whole = np.clip(np.round(typical * r.lognormal(0.0, 0.6, scale.products)), 3, 3000)
    # Round prices, some ending in .99: easy to add up in a lesson.
    cents = whole.astype(np.int64) * 100 - np.where(r.random(scale.products) < 0.3, 1, 0)
    return category, cents


def product_table(seed: int, scale: Scale) -> pa.Table:
    category, price = product_prices(seed, scale)
    r = rng(seed, "products", 1)
    n = scale.products
    ids = np.arange(1, n + 1)
    nouns = [noun for _, names, _ in CATEGORIES for noun in names]
    sizes = np.array([len(names) for _, names, _ in CATEGORIES])
    offsets = np.cumsum(sizes) - sizes
    noun = offsets[category] + np.floor(r.random(n) * sizes[category]).astype(np.int64)
    name = join(pick(ADJECTIVES, r.integers(0, len(ADJECTIVES), n)), " ", pick(nouns, noun),
                " ", text(ids))
    cost = np.round(price * r.uniform(0.35, 0.7, n)).astype(np.int64)
    # Wrinkle (1 in 50): cost not known yet, left empty; it must load as NULL, not 0.
    known = r.random(n) >= 0.02
    return pa.table({
        "product_id": ids, "product_name": name,
        "category": pick([c[0] for c in CATEGORIES], category), "price": money(price),
        "cost": money(cost, valid=known),
        "updated_at": seconds(1_672_531_200 + r.integers(0, 365 * DAY, n))})  # during 2023


@dataclass
class Offsets:
    """Running ids across chunks of the order-driven tables."""

    item: int = 0
    payment: int = 0
    activity: int = 0


def order_chunk(seed: int, scale: Scale, index: int, start: int, stop: int,
                prices: np.ndarray, ids: Offsets) -> dict[str, pa.Table]:
    """Orders [start, stop) with their lines, payments and events."""
    r = rng(seed, "orders", index)
    n = stop - start
    order_id = np.arange(start + 1, stop + 1)
    # Order times increase with the id: each order gets its own slot of the year.
    slot = YEAR_SECONDS / scale.orders
    order_ts = YEAR_START + np.floor((np.arange(start, stop) + r.random(n)) * slot).astype(
        np.int64)
    customer = r.integers(1, scale.customers + 1, n)
    # placed, shipped, delivered, cancelled, returned (ORDER_STATUSES order)
    status = weighted(r, np.arange(5), [0.05, 0.08, 0.72, 0.08, 0.07], n)
    low = np.array([0, DAY, 2 * DAY, 600, 10 * DAY])[status]
    high = np.array([1, 2 * DAY, 7 * DAY, 2 * DAY, 30 * DAY])[status]
    order_updated = order_ts + r.integers(low, high)
    orders = pa.table({"order_id": order_id, "customer_id": customer,
                       "order_ts": seconds(order_ts),
                       "status": pick(list(ORDER_STATUSES), status),
                       "updated_at": seconds(order_updated)})

    items, first_product, second_product, total = item_chunk(seed, scale, index, order_id,
                                                             prices, ids)
    payments = payment_chunk(seed, index, order_id, order_ts, order_updated, status, total, ids)
    events = activity_chunk(seed, scale, index, order_ts, customer, first_product,
                            second_product, ids)
    return {"orders": orders, "order_items": items, "payment_transactions": payments,
            "user_activities": events}


def item_chunk(seed: int, scale: Scale, index: int, order_id: np.ndarray, prices: np.ndarray,
               ids: Offsets) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    """1 to 3 lines per order; returns the lines, each order's first and second product and
    its total in cents (rounded once per order, as a payment would be)."""
    r = rng(seed, "order_items", index)
    lines = weighted(r, [1, 2, 3], [0.5, 0.4, 0.1], len(order_id))
    count = int(lines.sum())
    starts = np.cumsum(lines) - lines
    # Popular products first: low ids sell more.
    product = 1 + np.floor(scale.products * r.random(count) ** 2).astype(np.int64)
    quantity = weighted(r, [1, 2, 3, 4, 5], [0.7, 0.17, 0.07, 0.04, 0.02], count)
    discount = weighted(r, [0, 500, 1000, 1500, 2000], [0.7, 0.1, 0.1, 0.05, 0.05], count)
    unit = prices[product - 1]
    # Exact line amounts in 1/10,000 of a cent, summed per order, rounded half up.
    net = quantity * unit * (10_000 - discount)
    total = (np.add.reduceat(net, starts) + 5_000) // 10_000
    first = product[starts]
    second = product[np.where(lines > 1, starts + 1, starts)]
    table = pa.table({
        "order_item_id": np.arange(ids.item + 1, ids.item + count + 1),
        "order_id": np.repeat(order_id, lines), "product_id": product,
        "quantity": quantity.astype(np.uint16), "unit_price": money(unit),
        "discount_pct": money(discount, precision=5)})
    ids.item += count
    return table, first, second, total


def payment_chunk(seed: int, index: int, order_id: np.ndarray, order_ts: np.ndarray,
                  order_updated: np.ndarray, status: np.ndarray, total: np.ndarray,
                  ids: Offsets) -> pa.Table:
    """One payment per paid order (not placed, not cancelled); 1 in 30 failed first and was
    retried; a returned order's payment is refunded when the return is booked."""
    r = rng(seed, "payments", index)
    n = len(order_id)
    paid = (status != 0) & (status != 3)
    retried = paid & (r.random(n) < 1 / 30)
    rows = paid.astype(np.int64) + retried
    order = np.repeat(np.arange(n), rows)
    first_row = np.repeat(np.cumsum(rows) - rows, rows)
    failed = retried[order] & (np.arange(len(order)) == first_row)
    final = np.where(status[order] == 4, 2, 0)  # refunded or succeeded (PAYMENT_STATUSES)
    pay_status = np.where(failed, 1, final)
    method = weighted(r, [0, 1, 2], [0.6, 0.3, 0.1], n)[order]
    method = np.where(failed, 0, method)  # a declined card, then another try
    created = order_ts[order] + r.integers(30, 120, len(order))
    created += np.where(retried[order] & ~failed, r.integers(180, 600, len(order)), 0)
    updated = np.where(failed, created + 5, created)
    updated = np.where(~failed & (method == 2), created + r.integers(DAY // 2, 2 * DAY,
                                                                     len(order)), updated)
    updated = np.where(pay_status == 2, np.maximum(order_updated[order], created), updated)
    table = pa.table({
        "payment_id": np.arange(ids.payment + 1, ids.payment + len(order) + 1),
        "order_id": order_id[order], "amount": money(total[order]),
        "method": pick(list(PAYMENT_METHODS), method),
        "status": pick(list(PAYMENT_STATUSES), pay_status),
        "created_at": seconds(created, utc=True), "updated_at": seconds(updated, utc=True)})
    ids.payment += len(order)
    return table


# Event slots per order: the buyer's visit (login, 1-2 views, cart, checkout) and another
# customer's abandoned visit. (type, chance, earliest and latest seconds before the order)
SLOTS = [("login", 0.5, 900, 600), ("page_view", 1.0, 599, 300), ("page_view", 0.5, 299, 200),
         ("add_to_cart", 1.0, 199, 100), ("checkout", 1.0, 99, 10),
         ("page_view", 0.3, 3600, 1800), ("add_to_cart", 0.5, 1799, 1000)]


def activity_chunk(seed: int, scale: Scale, index: int, order_ts: np.ndarray,
                   customer: np.ndarray, first: np.ndarray, second: np.ndarray,
                   ids: Offsets) -> pa.Table:
    """About 4.6 events per order, in time order; 1 in 100 recorded twice (same customer, type,
    page and time, a new activity_id): the wrinkle the lessons deduplicate."""
    r = rng(seed, "activities", index)
    n, k = len(order_ts), len(SLOTS)
    present = r.random((n, k)) < np.array([chance for _, chance, _, _ in SLOTS])
    present[:, 6] &= present[:, 5]  # an abandoned cart follows its page view
    earliest = np.array([e for *_, e, _ in SLOTS])
    latest = np.array([la for *_, la in SLOTS])
    when = order_ts[:, None] - r.integers(latest, earliest + 1, (n, k))
    other = r.integers(1, scale.customers + 1, n)
    browsed = 1 + np.floor(scale.products * r.random(n) ** 2).astype(np.int64)
    who = np.column_stack([customer] * 5 + [other] * 2)
    product = np.column_stack([first, first, second, first, first, browsed, browsed])
    event = np.array([ACTIVITY_TYPES.index(t) for t, *_ in SLOTS])[None, :].repeat(n, axis=0)
    when, who, product, event = (a[present] for a in (when, who, product, event))
    order = np.argsort(when, kind="stable")
    order = np.repeat(order, 1 + (r.random(len(order)) < 0.01))
    when, who, product, event = (a[order] for a in (when, who, product, event))
    count = len(order)
    pages = join("/products/", text(product))
    fixed = pick(["", "", "/checkout", "/login"], event)  # by ACTIVITY_TYPES index
    table = pa.table({
        "activity_id": np.arange(ids.activity + 1, ids.activity + count + 1),
        "customer_id": who.astype(np.int32),
        "activity_type": pick(list(ACTIVITY_TYPES), event),
        "page": pc.if_else(pa.array(event < 2), pages, fixed),
        "occurred_at": seconds(when, utc=True)})
    ids.activity += count
    return table


def inventory_chunks(seed: int, scale: Scale) -> Iterator[pa.Table]:
    """Each product in some of the three warehouses (at least one), stock as of December."""
    for index, start, stop in chunks(scale.products, CHUNK_ROWS):
        r = rng(seed, "inventory", index)
        n = stop - start
        stocked = r.random((n, len(WAREHOUSES))) < 0.7
        stocked[np.arange(n), np.arange(start, stop) % len(WAREHOUSES)] = True
        product, warehouse = np.nonzero(stocked)
        rows = len(product)
        quantity = np.where(r.random(rows) < 0.05, 0, r.integers(1, 500, rows))
        yield pa.table({
            "product_id": (product + start + 1).astype(np.int32),
            "warehouse": pick(WAREHOUSES, warehouse), "quantity_on_hand": quantity.astype(np.int32),
            "updated_at": seconds(1_733_011_200 + r.integers(0, 31 * DAY, rows), utc=True)})


# --- writing ----------------------------------------------------------------------------------

class Writers:
    """One streaming CSV writer per file, written to `<name>.part` and renamed on success, so
    an interrupted run never leaves a set that looks complete."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.writers: dict[str, tuple[DataFile, pacsv.CSVWriter]] = {}
        self.rows: dict[str, int] = {}

    def write(self, spec: DataFile, table: pa.Table) -> None:
        table = table.select(spec.names)  # the contract's column order
        if spec.path not in self.writers:
            part = self.out / (spec.path + ".part")
            part.parent.mkdir(parents=True, exist_ok=True)
            # No quoting: our values never hold commas, quotes or line breaks, and unquoted
            # files look like the sample. (The loader keeps spaces around unquoted values.)
            writer = pacsv.CSVWriter(part, table.schema,
                                     write_options=pacsv.WriteOptions(
                                         quoting_style="none", quoting_header="none",
                                         batch_size=BATCH_ROWS))
            self.writers[spec.path] = (spec, writer)
            self.rows[spec.path] = 0
        self.writers[spec.path][1].write_table(table)
        self.rows[spec.path] += table.num_rows

    def finish(self, complete: bool) -> None:
        """Close every file; rename them into place if `complete`, else delete them."""
        for spec, writer in self.writers.values():
            writer.close()
            part = self.out / (spec.path + ".part")
            if complete:
                part.replace(self.out / spec.path)
            else:
                part.unlink(missing_ok=True)


def generate(out: Path | str, orders: int, seed: int = 0) -> dict[str, int]:
    """Write a data set with `orders` orders to `out`; returns rows per file.

    Deterministic: the same `orders` and `seed` give byte-identical files.
    """
    if orders < 1:
        raise ValueError("the number of orders must be at least 1")
    if seed < 0:
        raise ValueError("the seed must be 0 or more")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scale = Scale.for_orders(orders)
    by_table = {spec.table: spec for spec in (ORDERS, ORDER_ITEMS, PAYMENT_TRANSACTIONS,
                                              USER_ACTIVITIES)}
    files = Writers(out)
    try:
        for table in customer_chunks(seed, scale):
            files.write(CUSTOMERS, table)
        files.write(PRODUCTS, product_table(seed, scale))
        for table in inventory_chunks(seed, scale):
            files.write(INVENTORY, table)
        _, prices = product_prices(seed, scale)
        ids = Offsets()
        for index, start, stop in chunks(orders, CHUNK_ORDERS):
            for name, table in order_chunk(seed, scale, index, start, stop, prices, ids).items():
                files.write(by_table[name], table)
    except BaseException:
        files.finish(complete=False)
        raise
    files.finish(complete=True)
    return files.rows


def run_generate(orders: int, seed: int, out: Path) -> int:
    """`course data generate`: write the set and report what was written."""
    if out.resolve() == DATA_DIR.resolve():
        print(f"error: {out} holds the course's sample data; pass another --out",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        rows = generate(out, orders, seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    for path, count in rows.items():
        print(f"  {path:<34}{count:>14,}")
    total = sum(rows.values())
    print(f"wrote {total:,} rows to {out} in {elapsed:.1f} s ({total / elapsed:,.0f} rows/s); "
          f"load them with `course load --data {out}`")
    return 0
