"""A profile's closing step (reasonkit/engine/closing.py): the run's answer states the answer to the
question from the chain's best checked answer, never a checking tool's sentence about its own report,
and the text output names the step and the tool it came after."""

from __future__ import annotations

import pytest

from reasonkit.engine import Budget
from reasonkit.engine.answers import CLOSING_ENTRY
from reasonkit.protocol.loader import load_registry
from reasonkit.render import render_text
from tests.engine._scripted import by_prompt, step
from tests.engine.test_answers import CHECK
from tests.fakes.fake_llm import Reply

pytestmark = pytest.mark.anyio

CLOSED = """
[profiles.closed]
description = "an answer, a check of it, then the closing step"
min_confidence = 0.5
closing_step = true
[[profiles.closed.chain]]
protocol = "linear"
[[profiles.closed.chain]]
protocol = "check"
[profiles.closed.chain.inputs]
argument = "{{ results.linear.answer }}"
"""

META = "This is a verification report in markdown. It includes the bottom of this list."
QUESTION = "Should a 5-person startup adopt microservices?"


@pytest.fixture
def closed_dir(proto_dir):
    (proto_dir / "check.toml").write_text(CHECK)
    profiles = proto_dir / "profiles.toml"
    profiles.write_text(profiles.read_text() + CLOSED)
    return proto_dir


def replies(closing: object) -> dict[str, object]:
    return {
        "JOIN": {"answer": "**Answer:** No: one deployable keeps a team of five fast.", "confidence": 0.8},
        "VERDICT": {"bottom_line": META, "answer": f"**Bottom line:** {META}", "confidence": 0.7},
        "<question>": closing,
    }


async def test_the_answer_is_the_closing_step_not_a_verifiers_meta_sentence(closed_dir, scripted):
    stated = "No. A five-person team ships faster with one well-structured service; split it later."
    engine, provider = scripted(replies(stated))
    r = await engine.run_profile("closed", {"query": QUESTION})
    assert r.status == "complete" and r.answer == stated and META not in r.answer
    assert (r.answer_entry, r.answer_tool) == (CLOSING_ENTRY, "closing step, after Check")
    assert render_text(r).startswith(f"Answer (from closing step, after Check):\n{stated}")
    # the closing prompt holds the question, the best checked answer and each tool's conclusion
    closing = provider.requests[-1]
    prompt = closing.messages[0]["content"]
    assert prompt.startswith("<question>") and QUESTION in prompt and closing.schema is None  # prose
    assert META in prompt and "one deployable keeps a team of five fast" in prompt
    assert [e.entry for e in r.entries] == ["linear", "check", CLOSING_ENTRY]
    # it restates, it checks nothing: the profile's confidence is the chain's
    assert all(f.detail.find(CLOSING_ENTRY) == -1 for f in r.confidence_breakdown)
    assert r.entries[-1].confidence is None and step(r, "state").confidence is None


async def test_a_failed_closing_step_leaves_the_chains_answer(closed_dir, scripted):
    engine, _ = scripted(replies(""))
    r = await engine.run_profile("closed", {"query": QUESTION})
    assert step(r, "state").status == "failed"
    assert r.answer_entry == "check" and r.answer_tool == "Check" and META in r.answer


async def test_no_closing_step_once_the_budget_is_spent(closed_dir, scripted):
    engine, provider = scripted(replies("unused"))
    r = await engine.run_profile("closed", {"query": QUESTION}, budget=Budget(tokens=60))
    # four calls of 15 tokens finish the chain and spend the budget
    closing = r.entries[-1]
    assert [e.status for e in r.entries[:2]] == ["complete", "complete"]
    assert closing.entry == CLOSING_ENTRY and closing.status == "skipped" and closing.skip_reason
    assert not any(q.messages[0]["content"].startswith("<question>") for q in provider.requests)
    assert r.answer_entry != CLOSING_ENTRY


def test_built_in_profiles_close_with_the_answer():
    registry = load_registry([])
    assert registry.profiles and all(p.closing_step for p in registry.profiles.values())
    assert CLOSING_ENTRY not in registry.protocols  # not a tool of its own


async def test_balanced_over_the_fake_llm_server_answers_from_the_closing_step(make_engine, fake_llm):
    """The built-in balanced profile through the real SDK against the fake LLM server: the last call
    is the closing step, with the question in it, and its answer is the run's answer."""
    said = "No. With five people, one deployable is faster to build and run; split services later."
    fake_llm.default = by_prompt({"<question>": [Reply(text=said)]})  # the rest filled from the schema
    engine = make_engine(include_builtin=True)
    r = await engine.run_profile("balanced", {"query": QUESTION})
    assert r.status == "complete" and r.answer_entry == CLOSING_ENTRY
    assert r.answer_tool == "closing step, after ProofGuard"
    closing = r.entries[-1]
    assert r.answer == closing.answer == said and step(r, "state").status == "ok"
    last = fake_llm.requests[-1]
    assert "<question>" in str(last.body["messages"]) and "response_format" not in last.body
    assert render_text(r).startswith(f"Answer (from closing step, after ProofGuard):\n{said}")


async def test_an_entry_cut_short_hands_the_closing_step_the_answer_before_it(closed_dir, scripted):
    # the check never reaches its verdict: the closing step states the answer from the first
    # entry's, never from the check's "did not reach its final step" findings
    table = replies("No, not yet.")
    table["VERDICT"] = ["no json", "still none"]
    engine, provider = scripted(table)
    r = await engine.run_profile("closed", {"query": QUESTION})
    assert r.entries[1].partial or r.entries[1].status == "failed"
    prompt = next(
        q.messages[0]["content"]
        for q in provider.requests
        if q.messages[0]["content"].startswith("<question>")
    )
    assert "did not reach" not in prompt and "one deployable keeps a team of five fast" in prompt
    assert r.status == "incomplete" and r.answer.endswith("No, not yet.")


async def test_a_small_model_gets_the_short_prompt_and_a_cut_reply_ends_at_a_sentence(closed_dir, scripted):
    from reasonkit.engine.caps import StepCaps

    cut = ("No. A team of five ships faster with one service. Split it when the team grows and", "max_tokens")
    engine, provider = scripted(replies(cut), caps=StepCaps(max_items=4, max_tokens=384))
    r = await engine.run_profile("closed", {"query": QUESTION})
    closing = provider.requests[-1]
    assert "<checks>" not in closing.messages[0]["content"] and closing.max_tokens <= 300
    assert r.answer == "No. A team of five ships faster with one service."
    assert step(r, "state").status == "degraded" and any(
        "last full sentence" in n for n in step(r, "state").notes
    )
