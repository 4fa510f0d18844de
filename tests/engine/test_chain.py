"""Profile chains (reasonkit/engine/chain.py): `when` conditions, skipped entries, input mapping."""

from __future__ import annotations

import pytest

from tests.engine._scripted import by_prompt

pytestmark = pytest.mark.anyio


async def test_profile_condition_skips_entry_and_later_entry_still_runs(make_engine, fake_llm):
    fake_llm.default = by_prompt({})  # every step answers confidence 0.8 -> linear ~0.8 >= 0.75
    r = await make_engine().run_profile("chain", {"query": "q"})
    status = {e.entry: e.status for e in r.entries}
    assert status == {"linear": "complete", "fanout": "skipped", "linear2": "complete"}
    skipped = next(e for e in r.entries if e.entry == "fanout")
    assert "not below 0.75" in skipped.skip_reason
    linear2_prompt = [q.last_user_text for q in fake_llm.requests if q.last_user_text.startswith("A:")][-1]
    assert "FANOUT SAID" not in linear2_prompt and "FIRST SAID" in linear2_prompt
    assert r.complete and r.meets_threshold == (r.confidence >= 0.8)


async def test_profile_condition_runs_entry_when_unsure(make_engine, fake_llm):
    fake_llm.default = by_prompt(
        {
            "LIST": {"items": ["x", "y", "z"], "confidence": 0.9},
            "A:": {"note": "n", "confidence": 0.3},
            "B:": {"note": "n", "confidence": 0.3},
        }
    )
    r = await make_engine().run_profile("chain", {"query": "q"})
    status = {e.entry: e.status for e in r.entries}
    assert status["fanout"] == "complete"
    linear2_prompt = [q.last_user_text for q in fake_llm.requests if q.last_user_text.startswith("A:")][-1]
    assert "FANOUT SAID" in linear2_prompt
    # the profile breakdown names each entry that ran
    assert "fanout" in r.confidence_breakdown[0].detail
