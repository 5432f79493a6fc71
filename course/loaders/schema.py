"""What the data files hold: one spec per file, the single source for validation and the generator.

Names and types follow docs/data-contract.md. Each column has a *kind*: the text a CSV value
must be so that ClickHouse (CSVWithNames) and PostgreSQL (COPY ... CSV) read it as the contract's
type, without silently turning a bad value into a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..settings import PROJECT_ROOT

# Database and folder names live here so tests, notebooks and the dbt lessons share them.
RAW_DB = "raw"
PG_SOURCE_DB = "pg_source"
# Databases the dbt project creates; `course reset` drops them too.
DBT_DATABASES = ("staging", "intermediate", "marts")
DATA_DIR = PROJECT_ROOT / "data"
CLICKHOUSE_INIT_DIR = PROJECT_ROOT / "stack" / "clickhouse" / "init"
POSTGRES_INIT_DIR = PROJECT_ROOT / "stack" / "postgres" / "init"


@dataclass(frozen=True)
class Kind:
    """The text form of one column type.

    `pattern` must match the whole value; `strptime` (with `width` leading characters) must
    parse it back to the same text, which rejects dates like 2024-02-30; `minimum`/`maximum`
    bound integers and dates; `values` lists the only allowed values.
    """

    expected: str
    pattern: str = ""
    strptime: str = ""
    width: int = 0
    minimum: int | None = None
    maximum: int | None = None
    values: tuple[str, ...] = ()


def unsigned(bits: int) -> Kind:
    """UIntN: digits only, at most 2**bits - 1."""
    top = 2**bits - 1
    return Kind(f"a whole number from 0 to {top}", rf"^[0-9]{{1,{len(str(top))}}}$",
                minimum=0, maximum=top)


def signed(bits: int) -> Kind:
    """IntN / PostgreSQL integer and bigint."""
    top = 2 ** (bits - 1) - 1
    return Kind(f"a whole number from {-top - 1} to {top}",
                rf"^-?[0-9]{{1,{len(str(top))}}}$", minimum=-top - 1, maximum=top)


def decimal(precision: int, scale: int) -> Kind:
    """Decimal(P, S) / numeric(P, S): a plain number with at most S decimals (no exponent)."""
    return Kind(f"a number like 12.50 (at most {precision - scale} digits before the point, "
                f"{scale} after)",
                rf"^-?[0-9]{{1,{precision - scale}}}(\.[0-9]{{1,{scale}}})?$")


def one_of(*values: str) -> Kind:
    """A text column with a fixed set of values (the contract lists them)."""
    return Kind("one of " + ", ".join(values), values=values)


TEXT = Kind("text")
# Date and DateTime hold 1970-01-01 to 2106; a year outside it would be clamped silently.
DATE = Kind("a date like 2024-01-31", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "%Y-%m-%d", 10,
            minimum=1970, maximum=2105)
DATETIME = Kind("a date and time like 2024-01-31 23:59:00",
                r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
                "%Y-%m-%d %H:%M:%S", 19, minimum=1970, maximum=2105)
# timestamptz in the files always carries its offset (Z for UTC), so no session time zone
# can shift it; the range is that of the DateTime64 it becomes in ClickHouse.
TIMESTAMPTZ = Kind("a timestamp with its offset like 2024-01-31 23:59:00Z",
                   r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
                   r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$",
                   "%Y-%m-%d %H:%M:%S", 19, minimum=1900, maximum=2299)


@dataclass(frozen=True)
class Column:
    """One column of a data file; `nullable` columns may be empty (read as NULL)."""

    name: str
    kind: Kind
    nullable: bool = False


@dataclass(frozen=True)
class DataFile:
    """One CSV file of a data set and the table it fills."""

    path: str  # relative to the data folder
    table: str  # raw.<table> in ClickHouse, or public.<table> in PostgreSQL
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


ORDER_STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")
ACTIVITY_TYPES = ("page_view", "add_to_cart", "checkout", "login")
PAYMENT_METHODS = ("card", "paypal", "bank_transfer")
PAYMENT_STATUSES = ("succeeded", "failed", "refunded")

CUSTOMERS = DataFile("customers.csv", "customers", (
    Column("customer_id", unsigned(32)), Column("first_name", TEXT), Column("last_name", TEXT),
    Column("email", TEXT), Column("country", TEXT), Column("city", TEXT),
    Column("signup_date", DATE), Column("updated_at", DATETIME)))
PRODUCTS = DataFile("products.csv", "products", (
    Column("product_id", unsigned(32)), Column("product_name", TEXT), Column("category", TEXT),
    Column("price", decimal(10, 2)),
    # Empty means "not known yet"; it must load as NULL, not as a cost of 0 (data/README.md).
    Column("cost", decimal(10, 2), nullable=True), Column("updated_at", DATETIME)))
ORDERS = DataFile("orders.csv", "orders", (
    Column("order_id", unsigned(64)), Column("customer_id", unsigned(32)),
    Column("order_ts", DATETIME), Column("status", one_of(*ORDER_STATUSES)),
    Column("updated_at", DATETIME)))
ORDER_ITEMS = DataFile("order_items.csv", "order_items", (
    Column("order_item_id", unsigned(64)), Column("order_id", unsigned(64)),
    Column("product_id", unsigned(32)), Column("quantity", unsigned(16)),
    Column("unit_price", decimal(10, 2)), Column("discount_pct", decimal(5, 2))))

USER_ACTIVITIES = DataFile("postgres/user_activities.csv", "user_activities", (
    Column("activity_id", signed(64)), Column("customer_id", signed(32)),
    Column("activity_type", one_of(*ACTIVITY_TYPES)), Column("page", TEXT, nullable=True),
    Column("occurred_at", TIMESTAMPTZ)))
INVENTORY = DataFile("postgres/inventory.csv", "inventory", (
    Column("product_id", signed(32)), Column("warehouse", TEXT),
    Column("quantity_on_hand", signed(32)), Column("updated_at", TIMESTAMPTZ)))
PAYMENT_TRANSACTIONS = DataFile("postgres/payment_transactions.csv", "payment_transactions", (
    Column("payment_id", signed(64)), Column("order_id", signed(64)),
    Column("amount", decimal(10, 2)), Column("method", one_of(*PAYMENT_METHODS)),
    Column("status", one_of(*PAYMENT_STATUSES)), Column("created_at", TIMESTAMPTZ),
    Column("updated_at", TIMESTAMPTZ)))

RAW_FILES = (CUSTOMERS, PRODUCTS, ORDERS, ORDER_ITEMS)
SOURCE_FILES = (USER_ACTIVITIES, INVENTORY, PAYMENT_TRANSACTIONS)
ALL_FILES = RAW_FILES + SOURCE_FILES


def init_sql_files(folder: Path) -> list[Path]:
    """The init scripts of `folder` in the order Docker's entrypoint runs them (by name)."""
    return sorted(folder.glob("*.sql"))
