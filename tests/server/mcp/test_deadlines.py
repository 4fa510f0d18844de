"""Issue 24, deadlines that fit the model: the time estimates in the tool descriptions and the
default deadline of a call come from the configured provider's kind (`call_secs`, `serial` in
reasonkit/provider_kinds.py), so the embedded model, whose calls take seconds each and run one at a
time, gets deadlines it can finish in instead of a 50 s cut that leaves every call incomplete."""

from __future__ import annotations

import dataclasses

import pytest
from mcp import Client

from reasonkit import provider_kinds
from reasonkit.protocol.loader import load_registry
from reasonkit.server.mcp import estimates
from reasonkit.server.mcp.estimates import Pace, deadline_for, pace_for, protocol_estimate
from tests.server.conftest import make_settings, routed

BUILTIN = load_registry([], include_builtin=True)


def test_every_kind_has_a_pace_and_the_embedded_model_is_slow_and_serial():
    for row in provider_kinds.KINDS.values():
        assert 0 < row.call_secs[0] <= row.call_secs[1], row.name
    local = provider_kinds.KINDS["local"]
    assert local.serial and local.call_secs[1] >= 10  # tens of seconds per step on 2 cores
    assert not provider_kinds.KINDS["openai"].serial


def test_a_serial_pace_adds_up_calls_and_applies_the_small_model_caps(fake_llm, tmp_path):
    s = make_settings(fake_llm, tmp_path, provider=None, LLM_DEFAULT_PROVIDER="local")
    pace = pace_for(s)
    assert pace.serial and pace.kind == "local" and pace.max_items == s.llm.local.max_items
    gigathink = BUILTIN.protocols["gigathink"]
    hosted = protocol_estimate(gigathink)
    capped = protocol_estimate(gigathink, pace)
    assert capped.calls_max < hosted.calls_max  # 4 perspectives, not 10-12
    lo, hi = capped.seconds(pace)
    assert (lo, hi) == (capped.calls_min * pace.call_secs[0], capped.calls_max * pace.call_secs[1])
    assert "one call at a time" in capped.text(pace) and "embedded" in capped.text(pace)


def test_the_default_deadline_is_the_estimate_with_margin_within_bounds():
    est = protocol_estimate(BUILTIN.protocols["laserlogic"])
    quick = Pace("openai", (1.0, 2.0))
    slow = Pace("local", (10.0, 20.0), serial=True)
    huge = Pace("local", (100.0, 400.0), serial=True)
    assert deadline_for(est, quick, None) == estimates.MIN_DEADLINE_S  # a quick tool keeps 50 s
    assert deadline_for(est, slow, None) == round(est.calls_max * 20.0 * estimates.DEADLINE_MARGIN)
    assert deadline_for(est, huge, None) == estimates.MAX_AUTO_DEADLINE_S
    assert deadline_for(est, huge, 30.0) == 30.0  # [server] tool_deadline_secs, when set, is the deadline


@pytest.mark.anyio
async def test_a_call_with_default_arguments_gets_the_deadline_of_its_provider(
    make_server, fake_llm, tmp_path, monkeypatch
):
    # the fake server, but paced like a slow model: the deadline grows with the estimate
    slow = dataclasses.replace(provider_kinds.KINDS["openai"], call_secs=(20.0, 40.0))
    monkeypatch.setitem(provider_kinds.KINDS, "openai", slow)
    fake_llm.default = routed({})
    core = make_server()
    tiny = protocol_estimate(core.protocols["tiny"])
    expected = round(tiny.rounds * 40.0 * estimates.DEADLINE_MARGIN)
    tools = {t.name: t for t in core.tools}
    assert "~40-80 s" in (tools["tiny"].description or "")
    assert f"default {expected:g}" in tools["tiny"].input_schema["properties"]["deadline_s"]["description"]
    async with Client(core.server) as client:
        r = await client.call_tool("tiny", {"query": "q"})
        think = await client.call_tool("think", {"query": "q"})
    assert core.store.get(r.structured_content["run_id"])["budget"]["seconds"] == expected
    solo = core.deadlines["solo"]  # think: the deadline of the profile it runs
    assert core.store.get(think.structured_content["run_id"])["budget"]["seconds"] == solo


def test_a_set_tool_deadline_is_every_tools_deadline(make_server, fake_llm, tmp_path):
    s = make_settings(fake_llm, tmp_path / "d")
    s.server.tool_deadline_secs = 42.0
    core = make_server(settings=s)
    assert set(core.deadlines.values()) == {42.0}


def test_a_profile_with_a_closing_step_counts_its_call_and_round():
    quick = BUILTIN.profiles["quick"]
    chain = [protocol_estimate(BUILTIN.protocols[e.protocol]) for e in quick.chain]
    est = estimates.profile_estimate(quick, BUILTIN)
    assert quick.closing_step
    assert est.calls_min == sum(e.calls_min for e in chain) + 1
    assert est.calls_max == sum(e.calls_max for e in chain) + 1
    assert est.rounds == sum(e.rounds for e in chain) + 1  # gigathink > laserlogic > closing
    unclosed = estimates.profile_estimate(quick.model_copy(update={"closing_step": False}), BUILTIN)
    assert (unclosed.calls_max, unclosed.rounds) == (est.calls_max - 1, est.rounds - 1)
