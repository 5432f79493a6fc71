"""Tools the checks share: read the learner's file, run their SQL, build their dbt model in a
scratch copy of the project, and compare results with a hint that names the difference.

Everything that can go wrong with the learner's work turns into `Fail` with a hint; nothing
here writes to the learner's files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from .. import clients
from ..dbt_tools import PROJECT_DIR, run_dbt
from ..embedded_clickhouse.sql import tokens
from ..settings import Settings
from .model import EXERCISES_DIR, Exercise, Fail


def split_sql(text: str) -> list[str]:
    """The statements of a script, split at top-level `;` (not inside strings or comments)."""
    data = text.encode("utf-8")
    statements, start = [], 0
    for tok in tokens(data):
        if tok.text == b";":
            statements.append(data[start:tok.start])
            start = tok.end
    statements.append(data[start:])
    pieces = [s.decode("utf-8").strip() for s in statements]
    return [s for s in pieces if any(True for _ in tokens(s.encode("utf-8")))]


def server_message(exc: Exception) -> str:
    """The useful line of a ClickHouse error: 'Code: 62. ... Syntax error: ...'."""
    text = str(exc)
    match = re.search(r"Code: \d+\..*", text)
    line = match.group(0) if match else text.strip().splitlines()[-1]
    return re.sub(r"\s*\(version [^)]*\)", "", line).strip()[:500]


@dataclass
class CheckContext:
    """What a check works with: the settings, the folder of files to judge, a client."""

    exercise: Exercise
    settings: Settings
    folder: Path = EXERCISES_DIR
    _client: Client | None = field(default=None, repr=False)

    @property
    def file(self) -> Path:
        return self.exercise.path(self.folder)

    @property
    def shown_file(self) -> str:
        """The file's name as the learner knows it."""
        try:
            return str(self.file.relative_to(EXERCISES_DIR.parent))
        except ValueError:
            return str(self.file)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = clients.clickhouse(self.settings)
        return self._client

    @property
    def scratch(self) -> str:
        """A database (and dbt schema prefix) of this check's own: `check_<exercise>`."""
        return f"check_{self.exercise.name}"

    def learner_text(self) -> str:
        """The learner's file, or Fail when it is missing, empty or only the starter's TODO."""
        if not self.file.exists():
            raise Fail(f"{self.shown_file} does not exist. Restore the starter with "
                       f"`git checkout -- {self.shown_file}` and edit it.")
        text = self.file.read_text(encoding="utf-8")
        if not text.strip():
            raise Fail(f"{self.shown_file} is empty: write your answer in it.")
        return text

    def learner_sql(self) -> list[str]:
        """The learner's SQL statements (Fail when there are none)."""
        statements = split_sql(self.learner_text())
        if not statements:
            raise Fail(f"{self.shown_file} holds only comments: write the SQL below them.")
        return statements

    def fresh_database(self, name: str | None = None) -> str:
        """Drop and create the check's scratch database; returns its name."""
        name = name or self.scratch
        self.client.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")
        self.client.command(f"CREATE DATABASE `{name}`")
        return name

    def drop_database(self, name: str | None = None) -> None:
        self.client.command(f"DROP DATABASE IF EXISTS `{name or self.scratch}` SYNC")

    def run_learner_statements(self, database: str) -> None:
        """Run the learner's script statement by statement with `database` as the default."""
        for number, statement in enumerate(self.learner_sql(), start=1):
            try:
                self.client.command(statement, settings={"database": database})
            except DatabaseError as exc:
                raise Fail(f"Statement {number} of {self.shown_file} failed: "
                           f"{server_message(exc)}\nFix it, then check again.") from None

    def learner_query(self, database: str = "default") -> pd.DataFrame:
        """Run the learner's single SELECT and return its result."""
        statements = self.learner_sql()
        if len(statements) != 1:
            raise Fail(f"{self.shown_file} should hold one query; it holds {len(statements)} "
                       "statements.")
        try:
            return self.client.query_df(statements[0], settings={"database": database})
        except DatabaseError as exc:
            raise Fail(f"Your query failed: {server_message(exc)}\n"
                       f"Fix {self.shown_file}, then check again.") from None

    def query(self, sql: str, **settings: object) -> pd.DataFrame:
        """A query of the check itself (not the learner's)."""
        return self.client.query_df(sql, settings=settings or None)

    def scalar(self, sql: str) -> object:
        return self.client.command(sql)

    def require_tables(self, *tables: str, lesson: str) -> None:
        """Fail with the lesson to run when a table the exercise reads is missing or empty."""
        for table in tables:
            database, name = table.split(".")
            rows = self.client.command(
                "SELECT ifNull(sum(total_rows), 0) FROM system.tables "
                f"WHERE database = '{database}' AND name = '{name}'")
            if int(rows) == 0:
                raise Fail(f"{table} is missing or empty: run lesson {lesson} first "
                           "(or `course load` and `make run`).")


def require_columns(frame: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    """Fail naming the columns that `frame` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise Fail(f"{where} has no column {', '.join(repr(c) for c in missing)}; "
                   f"it has {', '.join(repr(c) for c in frame.columns) or 'none'}.")


def compare_frames(actual: pd.DataFrame, expected: pd.DataFrame, key: Sequence[str],
                   where: str, tolerance: float = 0.005) -> None:
    """Fail with the first difference between two results, matched on the `key` columns.

    Row order never matters, numbers are compared as numbers (Decimal or float alike), and
    extra columns in `actual` are allowed.
    """
    require_columns(actual, list(expected.columns), where)
    key = list(key)
    if actual.duplicated(subset=key).any():
        dup = actual[actual.duplicated(subset=key, keep=False)].iloc[0]
        raise Fail(f"{where} has more than one row for {describe_key(dup, key)}: "
                   "each should appear once (a missing GROUP BY, or a join that fans out?).")
    merged = expected.merge(actual[list(expected.columns)], on=key, how="outer",
                            suffixes=("_expected", "_yours"), indicator=True)
    missing = merged[merged["_merge"] == "left_only"]
    if len(missing):
        raise Fail(f"{where} lacks {len(missing)} of the {len(expected)} expected rows, "
                   f"for example {describe_key(missing.iloc[0], key)}.")
    extra = merged[merged["_merge"] == "right_only"]
    if len(extra):
        raise Fail(f"{where} has {len(extra)} rows that should not be there, for example "
                   f"{describe_key(extra.iloc[0], key)}.")
    for column in expected.columns:
        if column in key:
            continue
        ours, yours = merged[f"{column}_expected"], merged[f"{column}_yours"]
        for i in range(len(merged)):
            if not same_value(ours.iloc[i], yours.iloc[i], tolerance):
                raise Fail(f"{where}: {column!r} is {plain(yours.iloc[i])!r} for "
                           f"{describe_key(merged.iloc[i], key)}; expected "
                           f"{plain(ours.iloc[i])!r}.")


def describe_key(row: pd.Series, key: Sequence[str]) -> str:
    """`order_id = 1010, day = '2024-01-03'`: plain Python values, not numpy reprs."""
    return ", ".join(f"{k} = {plain(row[k])!r}" for k in key)


def plain(value: object) -> object:
    """A numpy or pandas scalar as the Python value it holds."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def same_value(expected: object, actual: object, tolerance: float) -> bool:
    if is_missing(expected) or is_missing(actual):
        return is_missing(expected) and is_missing(actual)
    try:
        return abs(float(expected) - float(actual)) <= tolerance  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(expected) == str(actual)


def is_missing(value: object) -> bool:
    """None, NaN or NaT (a NULL from the server)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@dataclass
class ScratchProject:
    """A throwaway copy of the dbt project with the learner's file in it, built into its own
    databases (`<schema>_staging`, `<schema>_intermediate`, `<schema>_marts`)."""

    ctx: CheckContext
    root: Path
    schema: str

    @property
    def project_dir(self) -> Path:
        return self.root / "project"

    def database(self, layer: str) -> str:
        """The ClickHouse database of a layer in this scratch build."""
        return f"{self.schema}_{layer}"

    def place(self, relative: str) -> Path:
        """Copy the learner's file to `relative` inside the project (replacing what is there)."""
        text = self.ctx.learner_text()
        target = self.project_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target

    def run(self, *args: str,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run dbt in the copy, into its own databases and target folder; never raises for a
        non-zero exit (look at `returncode`)."""
        return run_dbt(list(args), self.ctx.settings, target_path=self.root / "target",
                       log_path=self.root / "logs", schema=self.schema,
                       project_dir=self.project_dir, extra_env=extra_env)

    def dbt(self, *args: str, what: str, extra_env: dict[str, str] | None = None) -> str:
        """Run dbt in the copy; Fail with dbt's own error lines when it fails."""
        proc = self.run(*args, extra_env=extra_env)
        if proc.returncode != 0:
            raise Fail(f"{what} failed. dbt says:\n{dbt_errors(proc.stdout + proc.stderr)}")
        return proc.stdout

    def drop(self) -> None:
        """Drop every database the build made: one per layer and dbt's target schema."""
        for layer in ("staging", "intermediate", "marts"):
            self.ctx.drop_database(self.database(layer))
        self.ctx.drop_database(self.schema)


@contextmanager
def scratch_project(ctx: CheckContext) -> Iterator[ScratchProject]:
    """A copy of dbt/clickhouse_analytics in a temporary folder, removed afterwards together
    with the databases it built."""
    root = Path(tempfile.mkdtemp(prefix=f"course-check-{ctx.exercise.name}-"))
    shutil.copytree(PROJECT_DIR, root / "project",
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    project = ScratchProject(ctx, root, ctx.scratch)
    try:
        yield project
    finally:
        project.drop()
        shutil.rmtree(root, ignore_errors=True)


def dbt_errors(output: str, limit: int = 20) -> str:
    """The lines of dbt's output that say what went wrong (not the whole log)."""
    keep = []
    for line in output.splitlines():
        text = re.sub(r"^\S*\d\d:\d\d:\d\d(\.\d+)?\s+", "", line).rstrip()
        if "partial parsing" in text:  # dbt's note that a fresh copy has no saved manifest
            continue
        # A broken contract comes with a table of the columns that differ: keep its rows.
        if (text.lstrip().startswith("|") and "---" not in text) or (
                re.search(r"error|fail|warn|not found|depends on|Code: \d+", text, re.I)
                and not re.search(r"^(Done\.|Finished running)|PASS=|ERROR=0", text)):
            keep.append(text.strip())
    if not keep:
        keep = [line.strip() for line in output.strip().splitlines()[-limit:]]
    return "\n".join(list(dict.fromkeys(keep))[:limit])
