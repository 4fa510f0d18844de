"""The engine: runs protocols and profiles (runner), renders templates, parses outputs, scores confidence."""

from reasonkit.engine.result import EntryResult, Factor, RunResult, StepTrace
from reasonkit.engine.runner import Budget, Engine, Event, InputError, parse_budget

__all__ = ["Budget", "Engine", "EntryResult", "Event", "Factor", "InputError", "RunResult", "StepTrace", "parse_budget"]
