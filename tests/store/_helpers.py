"""Test helpers for the store tests: realistic RunResults (built in bench/traces.py, shared with the
store benchmark) and `must`."""

from __future__ import annotations

from typing import TypeVar

from bench.traces import make_result, make_step

__all__ = ["make_result", "make_step", "must"]

T = TypeVar("T")


def must(value: T | None) -> T:
    """The value, asserting it is there (for Optional results in tests)."""
    assert value is not None
    return value
