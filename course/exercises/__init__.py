"""Exercises with automatic checks: `check("01")` in a notebook, `course check` in a terminal.

Each exercise is a file the learner edits in `exercises/` (a SQL script, a dbt model, a dbt
test or an Airflow DAG); its reference solution has the same name in `exercises/solutions/`.
A check runs the file against the stack and compares results, never text, and answers pass
or fail with a hint. It never writes to the learner's files: dbt work happens in a scratch
copy of the project, SQL in a scratch database.
"""

from .catalog import EXERCISES, find
from .model import CheckResult, Exercise
from .runner import check, check_all

__all__ = ["EXERCISES", "CheckResult", "Exercise", "check", "check_all", "find"]
