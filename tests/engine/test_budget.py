"""Budgets and run state (reasonkit/engine/budget.py)."""

from __future__ import annotations

import anyio
import pytest

from reasonkit.engine import Budget, RunResult, parse_budget
from reasonkit.engine.budget import RunState
from reasonkit.errors import InputError


@pytest.mark.parametrize(
    "spec, budget",
    [
        ("30s", Budget(seconds=30)),
        ("2m", Budget(seconds=120)),
        ("4_000t", Budget(tokens=4000)),
        ("$0.05", Budget(usd=0.05)),
        (["30s", "1000t,$1"], Budget(seconds=30, tokens=1000, usd=1.0)),
        (None, Budget()),
    ],
)
def test_parse_budget(spec, budget):
    assert parse_budget(spec) == budget


@pytest.mark.parametrize("spec", ["30", "-5s", "0t", "$x", "fast"])
def test_bad_budget_names_itself(spec):
    with pytest.raises(InputError, match="is not understood"):
        parse_budget(spec)


def test_budget_check_is_sticky():
    result = RunResult(run_id="r", kind="protocol", name="p")
    state = RunState(result, Budget(tokens=100), anyio.CapacityLimiter(1), None, None)
    assert state.check_budget() is None
    result.tokens.add({"input": 80, "output": 30})
    assert "token budget of 100 reached (110 used)" == state.check_budget()
    result.tokens.input = 0
    assert state.check_budget() is not None
