"""Every surface shows every field of the view of a run, so the surfaces cannot drift apart again.

For each field of `RunView`, `EntryView`, `StepView` and `CallView` the test renders one run twice,
the second time with only that field changed, on every surface (`rk think` text and markdown, the
MCP tool result, the HTML report, `rk runs show --full`, `rk runs show`). The two renderings must
differ, unless the surface is listed below as leaving that field out on purpose, with the reason.
A field added to the view therefore fails here until each surface shows it or says why not; a
field added to `RunResult` fails `test_every_result_field_is_in_the_view` until the view has it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from reasonkit.cli.run_commands import render_tree
from reasonkit.engine.result import CallTrace, EntryResult, Factor, RunResult, StepTrace, Tokens
from reasonkit.presentation import CallView, EntryView, RunView, StepView
from reasonkit.render import render_markdown, render_text
from reasonkit.server.mcp.rendering import tool_result
from reasonkit.viewer import render_full, render_page


def base_run() -> RunResult:
    """One profile run with one entry, one step with one call: every field set to a value of its own."""
    call = CallTrace(
        purpose="main",
        raw_response='{"answer": "raw"}',
        tokens=Tokens(input=11, output=12),
        cost_usd=0.001,
        duration_ms=1500.0,
        provider="openai",
        model="m-1",
        attempts=2,
        cache_layer="memory",
    )
    step = StepTrace(
        step_id="extract",
        protocol="laserlogic",
        entry="logic",
        kind="analyze",
        status="ok",
        system="be careful",
        prompt="look at this",
        raw_response='{"answer": "step raw"}',
        output={"answer": "step answer"},
        confidence=0.71,
        confidence_breakdown=[Factor(signal="model", delta=0.8), Factor(signal="repair", delta=-0.09)],
        tokens=Tokens(input=21, output=22),
        cost_usd=0.002,
        duration_ms=2500.0,
        provider="openai",
        model="m-1",
        notes=["step note"],
        calls=[call],
        started_at=1_700_000_001.0,
        finished_at=1_700_000_003.5,
    )
    entry = EntryResult(
        entry="logic",
        protocol="laserlogic",
        status="complete",
        inputs={"argument": "entry input"},
        answer="entry answer",
        confidence=0.72,
        confidence_breakdown=[Factor(signal="weighted_mean", delta=0.72, detail="steps")],
        min_confidence=0.6,
        meets_threshold=True,
        steps=[step],
        tokens=Tokens(input=31, output=32),
        cost_usd=0.003,
        duration_ms=3500.0,
    )
    return RunResult(
        run_id="run-1",
        kind="profile",
        name="quick",
        status="incomplete",
        stop_reason="time budget of 30s reached",
        inputs={"query": "the question", "context": "some context"},
        answer="the answer",
        answer_entry="logic",
        answer_tool="LaserLogic",
        confidence=0.73,
        confidence_breakdown=[Factor(signal="weighted_mean", delta=0.73, detail="entries")],
        min_confidence=0.7,
        meets_threshold=True,
        entries=[entry],
        tokens=Tokens(input=41, output=42),
        cost_usd=0.004,
        duration_ms=4500.0,
        started_at=1_700_000_000.0,
        finished_at=1_700_000_004.5,
        provider="openai",
        model="m-1",
        budget={"usd": 1.0},
        notes=["run note"],
    )


# Another value for each field, of the field's type (the MCP surface validates the trace).
OTHER: dict[str, Any] = {
    "run_id": "run-2", "kind": "protocol", "name": "other-name", "status": "failed", "complete": True,
    "stop_reason": "stopped for a reason", "inputs": {"query": "another question"}, "answer": "other answer",
    "answer_entry": "other-entry-2", "answer_tool": "BedRock",
    "confidence": 0.31, "confidence_raw": 0.44, "min_confidence": 0.95, "meets_threshold": False,
    "confidence_breakdown": [Factor(signal="contradiction", delta=-0.05, detail="disagreed").model_dump()],
    "tokens": {"input": 901, "output": 902, "cache_read": 903, "cache_write": 904}, "cost_usd": 0.9876,
    "price_known": False, "duration_ms": 98765.0, "started_at": 1_600_000_000.0,
    "finished_at": 1_600_000_099.0, "provider": "anthropic", "model": "m-other",
    "budget_note": "budget not enforced: a reason",
    "errors": ["an error"], "notes": ["another note"], "entries": [], "entry": "other-entry",
    "protocol": "bedrock", "skip_reason": "skipped for a reason", "steps": [], "step_id": "other-step",
    "item_index": 7, "error": "a step error", "calls": [], "system": "other system",
    "prompt": "other prompt", "raw_response": "other raw", "output": {"verdict": "other output"},
    "purpose": "sample 2", "cached": True, "cache_layer": "redis", "attempts": 5,
    "fallbacks": [{"provider": "p0", "reason": "down"}],
}  # fmt: skip
# A step's own values where the run's and the entry's would not do: a for_each step gets an item.
ITEM = StepTrace(step_id="extract", protocol="laserlogic", entry="logic", kind="analyze", item_index=3)
STEP_OTHER = {"status": "degraded", "kind": "critique", "items": [ITEM.model_dump(mode="json")]}

LEVELS: dict[str, type] = {"run": RunView, "entry": EntryView, "step": StepView, "call": CallView}


def _page(trace: dict[str, Any]) -> str:
    return re.sub(r"report made [0-9: -]+", "", render_page(trace))


def _mcp(trace: dict[str, Any]) -> str:
    result = tool_result(RunResult.model_validate(trace))
    return json.dumps(result.structured_content, sort_keys=True) + result.content[0].text  # type: ignore[union-attr]


SURFACES: dict[str, Callable[[dict[str, Any]], str]] = {
    "text": lambda t: render_text(RunResult.model_validate(t)),
    "markdown": lambda t: render_markdown(RunResult.model_validate(t)),
    "mcp": _mcp,
    "page": _page,
    "terminal": render_full,
    "tree": render_tree,
}

MCP = "a tool result is short: its run page and the reasonkit://runs/{id} resource have the rest"
MCP_LEFT_OUT = {
    "run": ("inputs", "started_at", "finished_at"),
    "entry": ("inputs", "answer", "min_confidence", "tokens", "cost_usd", "duration_ms"),
    "step": ("kind", "confidence_breakdown", "cost_usd", "provider", "model", "notes", "calls", "output",
             "system", "prompt", "raw_response", "started_at", "finished_at"),
    "call": tuple(CallView.__dataclass_fields__),
}  # fmt: skip

# What a surface leaves out on purpose: (surface, "level.field") -> why.
SHORT = "a short summary: the run's numbers, its entries and their steps by status and confidence"
TREE = "`rk runs show` is the outline; `--full` (terminal) shows every step's work"
LEFT_OUT: dict[tuple[str, str], str] = {
    **{("text", f"run.{f}"): "`rk think` was told what to run" for f in ("kind", "name")},
    **{(s, f"run.{f}"): SHORT for s in ("text", "markdown") for f in ("inputs", "started_at", "finished_at")},
    **{(s, f"run.{f}"): SHORT for s in ("text", "markdown") for f in ("provider", "model")},
    **{(s, "run.errors"): "the MCP error text and `rk think`'s exit say it" for s in ("text", "markdown")},
    **{(s, "run.answer_entry"): "the answering tool's name says it" for s in ("text", "markdown")},
    **{(s, "run.complete"): "the status says it" for s in ("page", "terminal", "tree")},
    **{(s, "call.cache_layer"): "shown with `cached` (the base call is not cached)" for s in SURFACES},
    ("page", "call.raw_response"): "the step's raw response is shown; a call's only when the step has none",
    **{("mcp", f"{level}.{f}"): MCP for level, names in MCP_LEFT_OUT.items() for f in names},
    ("markdown", "entry.steps"): SHORT,
    **{(s, "step.item_index"): "a step's own index is unset; its items show theirs (step.items)"
       for s in SURFACES},
    **{("page", f"step.{f}"): "its calls table names each call's provider and model"
       for f in ("provider", "model")},
    **{(s, f"entry.{f}"): SHORT
       for s in ("text", "markdown")
       for f in ("protocol", "inputs", "answer", "confidence_breakdown", "min_confidence", "meets_threshold",
                 "tokens", "cost_usd", "duration_ms")},
    **{("tree", f"entry.{f}"): TREE for f in ("inputs", "answer", "min_confidence", "tokens", "cost_usd")},
    **{("terminal", f"entry.{f}"): "the entry's steps show them" for f in ("inputs", "answer")},
    **{(s, f"step.{f}"): SHORT
       for s in ("markdown",)
       for f in ("step_id", "status", "confidence", "error", "items")},
    **{(s, f"step.{f}"): SHORT
       for s in ("text", "markdown")
       for f in ("kind", "confidence_breakdown", "duration_ms", "tokens", "cost_usd", "provider", "model",
                 "notes", "calls", "output", "system", "prompt", "raw_response", "started_at", "finished_at",
                 "entry", "item_index")},
    **{("tree", f"step.{f}"): TREE
       for f in ("kind", "confidence_breakdown", "tokens", "cost_usd", "provider", "model", "notes", "calls",
                 "output", "system", "prompt", "raw_response", "started_at", "finished_at", "entry",
                 "item_index")},
    **{("terminal", f"step.{f}"): "the timeline and the prompt are the HTML report's"
       for f in ("system", "prompt", "started_at", "finished_at", "entry", "raw_response")},
    **{(s, f"call.{f}"): SHORT for s in ("text", "markdown", "tree") for f in CallView.__dataclass_fields__},
    **{("terminal", f"call.{f}"): "the calls line is short: the HTML report has the whole table"
       for f in ("provider", "model", "tokens", "cost_usd", "raw_response")},
}  # fmt: skip


def _with(level: str, name: str) -> dict[str, Any]:
    """The base trace with one field of one level changed."""
    trace = base_run().trace()
    target = {
        "run": trace,
        "entry": trace["entries"][0],
        "step": trace["entries"][0]["steps"][0],
        "call": trace["entries"][0]["steps"][0]["calls"][0],
    }[level]
    value = STEP_OTHER[name] if level == "step" and name in STEP_OTHER else OTHER[name]
    target[name] = copy.deepcopy(value)
    return trace


CASES = [(level, f.name) for level, cls in LEVELS.items() for f in dataclasses.fields(cls)]


def test_every_field_has_another_value():
    assert {name for _, name in CASES} <= {*OTHER, *STEP_OTHER}


SHOWN = [(s, lv, n) for s in SURFACES for lv, n in CASES if (s, f"{lv}.{n}") not in LEFT_OUT]


@pytest.mark.parametrize(("surface", "level", "name"), SHOWN, ids=[f"{s}-{lv}.{n}" for s, lv, n in SHOWN])
def test_every_surface_shows_every_field(surface: str, level: str, name: str):
    render = SURFACES[surface]
    before, after = render(base_run().trace()), render(_with(level, name))
    assert before != after, f"{surface} does not show {level}.{name}"


def test_what_is_left_out_is_really_left_out():
    """The list stays true: a surface that starts showing a field must leave the list."""
    base = {surface: render(base_run().trace()) for surface, render in SURFACES.items()}
    shown = [
        f"{surface} {field}"
        for surface, field in LEFT_OUT
        if SURFACES[surface](_with(*field.split("."))) != base[surface]
    ]
    assert shown == []


def test_the_left_out_list_names_only_real_fields_and_surfaces():
    fields = {f"{level}.{name}" for level, name in CASES}
    assert {s for s, _ in LEFT_OUT} <= set(SURFACES)
    assert {f for _, f in LEFT_OUT} <= fields


# RunResult fields the view leaves out, with the reason (`budget` shows as `budget_note`).
NOT_IN_VIEW = {
    # `owner` decides who may see the run (reasonkit/principal.py); it is not part of what is shown
    "run": {"budget", "owner"},
    # an entry's structured output is its last step's, shown there; its bottom line leads the run's
    # answer when the entry answers (run.answer); `partial` is what its status says
    "entry": {"output", "bottom_line", "partial"},
    "step": {"protocol"},  # the entry says it
    "call": {"stop_reason", "price_known"},  # the step's status and the run's cost say them
}


@pytest.mark.parametrize(
    ("level", "model"),
    [("run", RunResult), ("entry", EntryResult), ("step", StepTrace), ("call", CallTrace)],
)
def test_every_result_field_is_in_the_view(level: str, model: Any):
    viewed = {f.name for f in dataclasses.fields(LEVELS[level])}
    assert set(model.model_fields) - NOT_IN_VIEW[level] == viewed
