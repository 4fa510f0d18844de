"""Where a run's answer comes from (reasonkit/engine/answers.py): a complete run's answer comes from
its steps, a profile's answer leads with the latest bottom line of its chain and names its tool,
and the chain hands the next tool the best answer so far, never a status sentence."""

from __future__ import annotations

import pytest

from reasonkit.protocol.loader import load_registry
from reasonkit.render import render_text
from tests.engine._scripted import step
from tests.fakes.schemas import schema

pytestmark = pytest.mark.anyio

CHECK = f"""
id = "check"
name = "Check"
description = "checks an argument and restates the answer"
result = {{ step = "verdict", field = "answer", bottom_line = "bottom_line" }}
[inputs.argument]
type = "string"
required = true
[inputs.context]
type = "string"
[[steps]]
id = "verdict"
kind = "synthesize"
prompt = "VERDICT <argument>{{{{ inputs.argument }}}}</argument>{{{{ inputs.context }}}}"
output = {schema(bottom_line="string", answer="string")}
"""

ASKED = """
[profiles.asked]
description = "an answer, then a check of it"
min_confidence = 0.5
[[profiles.asked.chain]]
protocol = "linear"
[[profiles.asked.chain]]
protocol = "check"
[profiles.asked.chain.inputs]
argument = "{{ results.linear.answer }}"
"""


@pytest.fixture
def asked_dir(proto_dir):
    (proto_dir / "check.toml").write_text(CHECK)
    profiles = proto_dir / "profiles.toml"
    profiles.write_text(profiles.read_text() + ASKED)
    return proto_dir


async def test_empty_final_answer_is_a_degraded_step_not_an_unfinished_run(scripted):
    """Every step ok but the last one's `answer` empty: the run is complete, its answer comes from
    the steps, and the next entry of the chain is not handed a status sentence."""
    engine, provider = scripted({"JOIN": {"answer": "", "confidence": 0.8}, "A:": {"note": "from a"}})
    r = await engine.run_profile("chain", {"query": "q"})
    assert r.complete and r.status == "complete"
    linear = r.entries[0]
    join = step(r, "join")
    assert join.status == "degraded" and any("empty" in n for n in join.notes)
    assert "did not reach" not in linear.answer and "from a" in linear.answer
    assert "did not reach" not in r.answer
    later = [q.messages[0]["content"] for q in provider.requests if "FIRST SAID" in q.messages[0]["content"]]
    assert later and all("did not reach" not in text for text in later)


async def test_unfinished_entry_passes_the_best_answer_so_far(asked_dir, scripted):
    """An entry cut before its final step has partial findings, but the next tool is handed the
    latest real answer before it (here none, so the question), not the findings' status line."""
    engine, provider = scripted({"B:": ["no json", "still none"]})
    r = await engine.run_profile("asked", {"query": "the question"})
    linear = r.entries[0]
    assert linear.status == "incomplete" and "did not reach" in linear.answer
    verdict = next(q for q in provider.requests if q.messages[0]["content"].startswith("VERDICT"))
    argument = verdict.messages[0]["content"]
    assert "did not reach" not in argument and "the question" in argument


async def test_profile_answer_leads_with_the_latest_bottom_line_and_names_its_tool(asked_dir, scripted):
    engine, _ = scripted(
        {
            "JOIN": {"answer": "**Answer:** forty-two, because of the reasons", "confidence": 0.8},
            "VERDICT": {
                "bottom_line": "Forty-two, as far as the check supports it.",
                "answer": "**Bottom line:** Forty-two, as far as the check supports it.\n\nThe check.",
                "confidence": 0.7,
            },
        }
    )
    r = await engine.run_profile("asked", {"query": "what is six times seven?"})
    assert r.answer_entry == "check"
    assert r.answer.startswith("**Answer:** Forty-two, as far as the check supports it.")
    assert "The check." in r.answer
    assert r.answer.count("Forty-two, as far as the check supports it.") == 1
    assert r.summary()["answer_entry"] == "check" and r.answer_tool == "Check"
    assert render_text(r).startswith("Answer (from Check):")


async def test_profile_answer_without_a_bottom_line_is_the_report(asked_dir, scripted):
    engine, _ = scripted(
        {
            "JOIN": {"answer": "the first answer", "confidence": 0.8},
            "VERDICT": {"bottom_line": "", "answer": "A report with no bottom line.", "confidence": 0.7},
        }
    )
    r = await engine.run_profile("asked", {"query": "q"})
    assert r.answer_entry == "check"
    assert r.answer == "A report with no bottom line."


async def test_protocol_run_names_its_tool(scripted):
    engine, _ = scripted({"JOIN": {"answer": "joined", "confidence": 0.8}})
    r = await engine.run_protocol("linear", {"query": "q"})
    assert r.answer == "joined" and (r.answer_entry, r.answer_tool) == ("linear", "Linear")
    assert render_text(r).startswith("Answer (from Linear):")


def test_builtin_protocols_declare_their_bottom_line():
    """Every built-in tool says which field of its final step states the answer to the question."""
    registry = load_registry([], include_builtin=True)
    for proto in registry.protocols.values():
        assert proto.result.bottom_line, proto.id
        final = proto.step(proto.result.step)
        assert proto.result.bottom_line in final.output["properties"], proto.id
