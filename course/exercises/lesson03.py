"""Lesson 03: its exercises (being written)."""

from __future__ import annotations

from .model import Exercise

EXERCISES: tuple[Exercise, ...] = ()
