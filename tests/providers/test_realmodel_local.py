"""Real-model tier: the `quick` profile and every built-in ThinkTool end to end through the engine on
the in-process SmolLM2-135M (llama.cpp). A weak model: these tests assert structure and honesty
(status, reasons, confidences in range, breakdown, a serialisable trace), never answer quality.

Run with `python -m pytest -m realmodel tests/providers/test_realmodel_local.py` (4-6 min on 2 busy cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from reasonkit.engine import Budget, Engine, RunResult
from reasonkit.engine.caps import StepCaps
from reasonkit.protocol.loader import load_registry

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'reasonkit[local]'")

from reasonkit.providers.local import build_local_provider

pytestmark = [pytest.mark.anyio, pytest.mark.realmodel, pytest.mark.timeout(400)]

QUESTION = "Should a small bakery start selling its bread online?"
TOOL_INPUT = {
    "gigathink": QUESTION,
    "laserlogic": "All cats are mammals. Tom is a mammal. Therefore Tom is a cat.",
    "bedrock": "Regular exercise improves sleep quality.",
    "proofguard": "Water boils at 100 degrees Celsius at sea level.",
    "brutalhonesty": "Plan: open a second bakery next month, funded by a bank loan, with no market study.",
}
# Smaller than the `[llm.local]` defaults (4 items, 384 tokens) to keep this tier short.
TEST_CAPS = StepCaps(max_items=3, max_tokens=256, samples=1)


@pytest.fixture(scope="module", autouse=True)
def only_when_selected(request: pytest.FixtureRequest) -> None:
    """The tier takes minutes: it runs only when asked for (`-m realmodel`), never as part of a
    plain `pytest` run (module scope and autouse: before any model or server starts)."""
    if "realmodel" not in (request.config.option.markexpr or ""):
        pytest.skip("real-model tier: select it with -m realmodel")


def assert_structure_and_honesty(result: RunResult) -> None:
    assert result.status in ("complete", "incomplete"), (result.status, result.errors)
    steps = [s for entry in result.entries for s in entry.steps]
    traces = steps + [item for s in steps for item in s.items]
    if result.status == "incomplete":  # incomplete says why
        reasons = [result.stop_reason, *result.errors, *(t.error for t in traces)]
        assert any(reasons), "an incomplete run must say why"
    for trace in traces:
        if trace.status == "degraded":  # a for_each step says why in its items
            why = [*trace.notes, *(n for item in trace.items for n in [*item.notes, item.error or ""])]
            assert any(why), f"{trace.step_id}: degraded without a note"
        if trace.status == "failed":
            assert trace.error, f"{trace.step_id}: failed without an error"
    confidences: list[Any] = [result.confidence, *(e.confidence for e in result.entries)]
    confidences += [t.confidence for t in traces]
    for value in confidences:
        assert value is None or 0.0 <= value <= 1.0, value
    assert result.confidence_breakdown, "the confidence breakdown is missing"
    assert result.answer.strip()
    assert result.tokens.total > 0 and result.cost_usd == 0.0
    json.loads(result.model_dump_json())  # the trace is JSON-serialisable


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_registry(), build_local_provider(None), caps=TEST_CAPS)


async def test_quick_profile_end_to_end(engine):
    result = await engine.run_profile("quick", {"query": QUESTION}, budget=Budget(seconds=340))
    assert_structure_and_honesty(result)
    # quick = gigathink -> laserlogic -> the closing step: all ran end to end, so the other tools are
    # run on their own below
    assert [(e.protocol, e.status != "skipped") for e in result.entries] == [
        ("gigathink", True),
        ("laserlogic", True),
        ("closing", True),
    ]
    assert any("small-model caps" in n for n in result.notes), result.notes


@pytest.mark.parametrize("tool", ["bedrock", "proofguard", "brutalhonesty"])
async def test_each_other_builtin_tool_end_to_end(engine, tool):
    protocol = engine.registry.protocol(tool)
    first_input = next(name for name, spec in protocol.inputs.items() if spec.required)
    result = await engine.run_protocol(tool, {first_input: TOOL_INPUT[tool]}, budget=Budget(seconds=240))
    assert_structure_and_honesty(result)
    assert result.provider == "local" and result.model == "SmolLM2-135M-Instruct.Q4_1"


def test_shutdown_after_a_call_prints_no_llama_del_noise(tmp_path):
    """A process that used the model ends quietly: the models are closed at exit, before teardown,
    where `Llama.__del__` used to print `Exception ignored in: <function Llama.__del__ ...>`."""
    script = (
        "import anyio\n"
        "from reasonkit.providers.local import build_local_provider\n"
        "from reasonkit.providers.base import LLMRequest\n"
        "p = build_local_provider(None)\n"
        "anyio.run(p.complete, LLMRequest(messages=[{'role': 'user', 'content': 'hi'}], max_tokens=8))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Exception ignored" not in done.stderr and "__del__" not in done.stderr, done.stderr
