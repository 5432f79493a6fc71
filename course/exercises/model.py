"""What an exercise is, what a check answers, and how a check says "not yet"."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..settings import PROJECT_ROOT

if TYPE_CHECKING:
    from .harness import CheckContext

EXERCISES_DIR = PROJECT_ROOT / "exercises"
SOLUTIONS_DIR = EXERCISES_DIR / "solutions"


class Fail(Exception):
    """The learner's work is not right yet; the message is the hint shown to them."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: the file the learner edits and the check that judges it."""

    name: str  # "01_sorting_key": lesson number, then a short name
    title: str
    kind: str  # what the learner edits: "SQL script", "dbt model", "dbt test", "Airflow DAG"
    file: str  # file name in exercises/ (and in exercises/solutions/)
    check: Callable[[CheckContext], str]  # returns the pass message or raises Fail

    @property
    def lesson(self) -> str:
        """The lesson's number, "01" .. "10"."""
        return self.name[:2]

    def path(self, folder: Path = EXERCISES_DIR) -> Path:
        """Where the exercise's file is in `folder`."""
        return folder / self.file


@dataclass(frozen=True)
class CheckResult:
    """The answer of one check: pass or fail, with a message that says what to do next."""

    exercise: Exercise
    passed: bool
    message: str
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def __str__(self) -> str:
        return f"{self.verdict} {self.exercise.name}: {self.message}"

    # No timings in the notebook display: the committed outputs must stay the same run to run.
    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour, mark = ("#15803d", "&#10004;") if self.passed else ("#b91c1c", "&#10008;")
        return (f'<div style="border-left:4px solid {colour};padding:4px 10px">'
                f'<b style="color:{colour}">{mark} {self.verdict}</b> '
                f"<code>{html.escape(self.exercise.name)}</code> "
                f"({html.escape(self.exercise.kind)}: <code>exercises/"
                f"{html.escape(self.exercise.file)}</code>)<br>"
                f'<span style="white-space:pre-wrap">{html.escape(self.message)}</span></div>')
