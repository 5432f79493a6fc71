"""The exercises, in lesson order. Each lesson's module holds its checks."""

from __future__ import annotations

from . import (
    lesson01,
    lesson02,
    lesson03,
    lesson04,
    lesson05,
    lesson06,
    lesson07,
    lesson08,
    lesson09,
    lesson10,
)
from .model import Exercise

EXERCISES: tuple[Exercise, ...] = (
    *lesson01.EXERCISES,
    *lesson02.EXERCISES,
    *lesson03.EXERCISES,
    *lesson04.EXERCISES,
    *lesson05.EXERCISES,
    *lesson06.EXERCISES,
    *lesson07.EXERCISES,
    *lesson08.EXERCISES,
    *lesson09.EXERCISES,
    *lesson10.EXERCISES,
)


def find(name: str) -> Exercise:
    """The exercise called `name`, or the one of lesson `name` ("01", "1", "01_sorting_key")."""
    wanted = name.strip().removesuffix(".sql").removesuffix(".py")
    for exercise in EXERCISES:
        if wanted in (exercise.name, exercise.file, exercise.lesson):
            return exercise
    if wanted.isdigit():
        for exercise in EXERCISES:
            if int(exercise.lesson) == int(wanted):
                return exercise
    known = ", ".join(e.name for e in EXERCISES)
    raise KeyError(f"no exercise {name!r}; the exercises are: {known}")
