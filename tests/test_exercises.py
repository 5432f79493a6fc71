"""Every exercise check, against the session's stack: the starter fails, the reference
solution passes, a missing or broken file is a failed check with a hint (never a crash), and
no check writes to the learner's files."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course.exercises import EXERCISES, Exercise, check
from course.exercises.harness import split_sql
from course.exercises.model import EXERCISES_DIR, SOLUTIONS_DIR

from conftest import restore_sample

pytestmark = pytest.mark.slow

BROKEN = {".sql": "SELEC order_id FROM raw.orders WHERE", ".py": "import airflow\nfrom = 1\n"}
CRASH = "The check could not run"  # the runner's words when a check itself raised


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", autouse=True)
def sample_state(stack_settings):
    """The sample data and the built project, and proof afterwards that no file changed."""
    restore_sample(stack_settings)
    before = fingerprint(EXERCISES_DIR)
    yield
    assert fingerprint(EXERCISES_DIR) == before, "a check modified files in exercises/"


def ids(exercise: Exercise) -> str:
    return exercise.name


def test_there_is_an_exercise_for_every_lesson_from_01_to_10():
    assert sorted({e.lesson for e in EXERCISES}) == [f"{n:02d}" for n in range(1, 11)]
    for exercise in EXERCISES:
        assert exercise.path().exists(), f"starter {exercise.file} is missing"
        assert exercise.path(SOLUTIONS_DIR).exists(), f"solution {exercise.file} is missing"
        assert exercise.path().read_text() != exercise.path(SOLUTIONS_DIR).read_text()


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_starter_fails_with_a_hint(exercise, stack_settings):
    result = check(exercise, stack_settings)
    assert not result.passed, f"the starter of {exercise.name} passes its check"
    assert CRASH not in result.message, result.message
    assert len(result.message) > 30, result.message


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_solution_passes(exercise, stack_settings):
    result = check(exercise, stack_settings, solution=True)
    assert result.passed, result.message


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_missing_file_is_a_fail_naming_the_file(exercise, stack_settings, tmp_path):
    result = check(exercise, stack_settings, folder=tmp_path)
    assert not result.passed
    assert "does not exist" in result.message and exercise.file in result.message


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_broken_file_is_a_fail_with_the_error(exercise, stack_settings, tmp_path):
    (tmp_path / exercise.file).write_text(BROKEN[Path(exercise.file).suffix])
    result = check(exercise, stack_settings, folder=tmp_path)
    assert not result.passed
    assert CRASH not in result.message, result.message


def test_course_check_exit_codes_and_table(stack_env_vars):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "course.cli", "check", *args],
                              env=stack_env_vars, capture_output=True, text=True, timeout=300)

    starter = run("01")
    assert starter.returncode == 1 and starter.stdout.startswith("FAIL 01_sorting_key")
    solved = run("01", "--solutions")
    assert solved.returncode == 0 and solved.stdout.startswith("PASS 01_sorting_key")
    both = run("1", "02", "--solutions")
    assert both.returncode == 0 and "2 of 2 exercises pass." in both.stdout
    assert "exercise" in both.stdout and "result" in both.stdout
    unknown = run("nope")
    assert unknown.returncode == 2 and "the exercises are" in unknown.stderr
    listed = run("--list")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == len(EXERCISES)


def test_stopped_stack_is_a_fail_that_says_how_to_start_it(stack_settings, tmp_path):
    from dataclasses import replace

    from course.stack.scratch import free_port

    nowhere = replace(stack_settings, clickhouse_port=free_port())
    shutil.copy(EXERCISES[0].path(SOLUTIONS_DIR), tmp_path / EXERCISES[0].file)
    result = check(EXERCISES[0], nowhere, folder=tmp_path)
    assert not result.passed and "course up" in result.message


def test_split_sql_keeps_semicolons_inside_strings_and_comments():
    script = "SELECT ';' AS a; -- a comment; still a comment\nSELECT 2 /* ; */;\n\n-- only\n"
    assert split_sql(script) == ["SELECT ';' AS a",
                                 "-- a comment; still a comment\nSELECT 2 /* ; */"]
