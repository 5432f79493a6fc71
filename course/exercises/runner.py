"""Run checks: one (`check("01")`), several, or all with a summary table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ..settings import Settings, load_settings
from ..stack import ServiceError
from .catalog import EXERCISES, find
from .harness import CheckContext
from .model import EXERCISES_DIR, SOLUTIONS_DIR, CheckResult, Exercise, Fail


def check(name: str | Exercise, settings: Settings | None = None, *,
          folder: Path | str | None = None, solution: bool = False) -> CheckResult:
    """Check one exercise against the running stack and return pass or fail with a hint.

    `name` is the exercise's name or just its lesson number ("01"). The learner's file in
    `exercises/` is judged, or the reference solution with `solution=True`, or the file of
    the same name in `folder`. Never raises for a wrong answer: broken SQL, a missing file
    and a stopped stack all come back as a failed result whose message says what to do.
    """
    exercise = name if isinstance(name, Exercise) else find(name)
    where = Path(folder) if folder is not None else (SOLUTIONS_DIR if solution else EXERCISES_DIR)
    ctx = CheckContext(exercise, settings or load_settings(), where)
    started = time.perf_counter()
    try:
        message, passed = exercise.check(ctx), True
    except Fail as exc:
        message, passed = str(exc), False
    except ServiceError as exc:
        message, passed = f"{exc}", False
    except Exception as exc:  # noqa: BLE001 - a check must answer, whatever the learner wrote
        message = (f"The check could not run ({type(exc).__name__}: {exc}). "
                   "Is the stack up (`course status`)? See docs/troubleshooting.md.")
        passed = False
    return CheckResult(exercise, passed, message, time.perf_counter() - started)


def check_all(settings: Settings | None = None, *, names: Sequence[str] = (),
              folder: Path | str | None = None, solution: bool = False,
              progress: bool = False) -> list[CheckResult]:
    """Check the named exercises (default: all) in lesson order."""
    settings = settings or load_settings()
    chosen = [find(n) for n in names] if names else list(EXERCISES)
    results = []
    for exercise in chosen:
        if progress:
            print(f"checking {exercise.name} ...", flush=True)
        results.append(check(exercise, settings, folder=folder, solution=solution))
    return results


def summary_table(results: Sequence[CheckResult]) -> str:
    """A plain-text table: exercise, what is edited, verdict, time and the first line of the
    message; then the count of passes."""
    rows = [(r.exercise.name, r.exercise.kind, r.verdict, f"{r.seconds:.1f}s",
             r.message.splitlines()[0][:90] if r.message else "") for r in results]
    head = ("exercise", "edits", "result", "time", "message")
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(4)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(str(v).ljust(w) for v, w in zip(values[:4], widths, strict=True)) \
            + "  " + values[4]

    lines = [line(head), line(["-" * w for w in widths] + ["-" * 7])]
    lines += [line(row) for row in rows]
    passed = sum(r.passed for r in results)
    lines.append(f"\n{passed} of {len(results)} exercises pass.")
    return "\n".join(lines)
