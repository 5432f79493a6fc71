"""Lesson 03, dbt staging: clean the customers once, in `stg_shop__customers`.

The sample data has mixed-case emails with stray spaces, but no empty city and no padded
name. So the check builds the learner's model on a copy of raw.customers with two customers
added that carry those wrinkles too, through the project's `raw_database` var, and compares
the view's rows with the cleaned rows computed here in pandas.
"""

from __future__ import annotations

import pandas as pd

from .dbt_checks import (
    copy_raw_tables,
    dbt_outcomes,
    dbt_says,
    failed_tests,
    raw_vars,
    require_model_built,
)
from .harness import CheckContext, compare_frames, require_columns, scratch_project
from .model import Exercise, Fail

MODEL = "stg_shop__customers"
COLUMNS = ["customer_id", "first_name", "last_name", "email", "country", "city",
           "signup_date", "updated_at"]
# Customers the check adds to its copy of raw.customers: the wrinkles the sample data lacks.
EXTRA_CUSTOMERS = """
    (901, ' Grace', 'Hopper', 'grace.hopper@example.com', 'United States', '',
     '2024-01-20', '2024-01-20 10:00:00'),
    (902, 'Ada', 'Lovelace  ', 'ADA.LOVELACE@EXAMPLE.COM', 'United Kingdom', ' London ',
     '2024-01-21', '2024-01-21 11:30:00')
"""


# --- exercise 03 ----------------------------------------------------------------------------

def expected_customers(raw: pd.DataFrame) -> pd.DataFrame:
    """The cleaned customers, computed from the raw rows in pandas (ClickHouse's trim() removes
    spaces only, so spaces are all that is stripped here)."""
    def city(value: str) -> str | None:
        return value.strip(" ") or None

    return pd.DataFrame({
        "customer_id": raw["customer_id"],
        "first_name": raw["first_name"].str.strip(" "),
        "last_name": raw["last_name"].str.strip(" "),
        "email": raw["email"].str.strip(" ").str.lower(),
        "country": raw["country"],
        "city": raw["city"].map(city).astype(object),
        "signup_date": raw["signup_date"],
        "updated_at": raw["updated_at"],
    })


def shown(value: object) -> str:
    """A value as the hint shows it: strings quoted (stray spaces visible), NULL for null."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "NULL"
    return repr(value)


def cleaning_hint(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Fail naming the first customer whose email, city or names are not cleaned right."""
    merged = expected.merge(actual[COLUMNS], on="customer_id", suffixes=("", "_yours"))
    merged = merged.sort_values("customer_id")

    def first_wrong(column: str) -> pd.Series | None:
        for _, row in merged.iterrows():
            ours, yours = row[column], row[f"{column}_yours"]
            if shown(ours) != shown(yours):
                return row
        return None

    row = first_wrong("email")
    if row is not None:
        yours, ours = row["email_yours"], row["email"]
        text = yours if isinstance(yours, str) else ""
        spaces, capitals = text != text.strip(" "), text != text.lower()
        why = ("it still has capital letters and spaces around it: lower(trim(email))"
               if spaces and capitals else
               "it still has spaces around it: trim it too" if spaces else
               "it still has capital letters: lower-case it too" if capitals else
               "lower-case and trim the raw email: lower(trim(email))")
        raise Fail(f"Customer {row['customer_id']}'s email is {shown(yours)}; expected "
                   f"{shown(ours)}: {why}. The same address must always compare equal, or "
                   "joins and counts by email split one customer in two.")
    row = first_wrong("city")
    if row is not None:
        yours, ours = row["city_yours"], row["city"]
        if ours is None:
            raw = "'' (empty)" if yours == "" else shown(yours)
            raise Fail(f"Customer {row['customer_id']}'s city is {shown(yours)}; expected NULL. "
                       f"The shop exports an unknown city as {raw}, and '' would count as a "
                       "city of its own in every GROUP BY city: nullif(trim(city), '') makes "
                       "it null.")
        raise Fail(f"Customer {row['customer_id']}'s city is {shown(yours)}; expected "
                   f"{shown(ours)}: trim the spaces around it (trim before nullif, so a city "
                   "of only spaces becomes null too).")
    for column in ("first_name", "last_name"):
        row = first_wrong(column)
        if row is not None:
            raise Fail(f"Customer {row['customer_id']}'s {column} is "
                       f"{shown(row[f'{column}_yours'])}; expected {shown(row[column])}: "
                       f"trim({column}) removes the stray spaces.")


def check_stg_customers(ctx: CheckContext) -> str:
    """The learner's stg_shop__customers builds, cleans emails, cities and names exactly as
    computed from raw.customers (plus two planted customers), and passes its dbt tests."""
    ctx.learner_text()
    ctx.require_tables("raw.customers", lesson="02")
    raw_database = copy_raw_tables(ctx, ["customers"])
    try:
        ctx.client.command(f"INSERT INTO `{raw_database}`.customers ({', '.join(COLUMNS)}) "
                           f"VALUES {EXTRA_CUSTOMERS}")
        raw = ctx.query(f"SELECT {', '.join(COLUMNS)} FROM `{raw_database}`.customers")
        expected = expected_customers(raw)
        with scratch_project(ctx) as project:
            project.place(f"models/staging/{MODEL}.sql")
            # `cautious`: only the tests of this model alone (not the relationships test of
            # stg_shop__orders, which the scratch build does not have).
            proc, outcomes = dbt_outcomes(project, "build", "--select", MODEL,
                                          "--indirect-selection", "cautious",
                                          *raw_vars(raw_database))
            require_model_built(proc, outcomes, [MODEL], f"Building {MODEL}")
            actual = ctx.query(f"SELECT * FROM `{project.database('staging')}`.`{MODEL}`")
            require_columns(actual, COLUMNS, f"Your {MODEL}")
            cleaning_hint(actual, expected)
            compare_frames(actual, expected, ["customer_id"], f"Your {MODEL}")
            failing = failed_tests(outcomes, [MODEL])
            if failing:
                raise Fail(f"The rows are right, but dbt tests of {MODEL} fail: "
                           f"{', '.join(failing)}. dbt says:\n{dbt_says(proc)}")
            tests = len(outcomes) - 1
    finally:
        ctx.drop_database(raw_database)
    return (f"{MODEL} cleans all {len(expected)} customers (emails lower-cased and trimmed, "
            f"empty cities null, names trimmed) and passes its {tests} dbt tests.")


EXERCISES = (
    Exercise("03_stg_shop__customers", "Clean the customers in staging", "dbt model",
             "03_stg_shop__customers.sql", check_stg_customers),
)
