"""The engine: runs protocols and profiles (runner, chain, graph, steps), parses outputs, scores
confidence, applies budgets and small-model caps."""

from reasonkit.engine.budget import Budget, Event, EventCallback, TextCallback, parse_budget
from reasonkit.engine.caps import StepCaps
from reasonkit.engine.result import EntryResult, Factor, RunResult, StepTrace
from reasonkit.engine.runner import Engine

__all__ = [
    "Budget",
    "Engine",
    "EntryResult",
    "Event",
    "EventCallback",
    "Factor",
    "RunResult",
    "StepCaps",
    "StepTrace",
    "TextCallback",
    "parse_budget",
]
