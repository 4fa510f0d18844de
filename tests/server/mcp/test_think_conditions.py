"""The `think` tool over MCP (the SDK's in-memory Client): a profile's conditional entry
(`when = { confidence_below | confidence_above = ... }`) runs or is skipped according to the
confidence so far, and the result says which and why."""

from __future__ import annotations

import pytest
from mcp import Client

from tests.server.conftest import PROFILES, routed

pytestmark = pytest.mark.anyio

CONDITIONAL = """
[profiles.unsure]
description = "tiny, then fan only while confidence is below 0.75"
min_confidence = 0.5
[[profiles.unsure.chain]]
protocol = "tiny"
[[profiles.unsure.chain]]
protocol = "fan"
when = { confidence_below = 0.75 }
inputs = { query = "{{ inputs.query }} / {{ results.tiny.answer }}" }

[profiles.sure]
description = "tiny, then fan only once confidence is above 0.75"
min_confidence = 0.5
[[profiles.sure.chain]]
protocol = "tiny"
[[profiles.sure.chain]]
protocol = "fan"
when = { confidence_above = 0.75 }
inputs = { query = "{{ inputs.query }} / {{ results.tiny.answer }}" }
"""


@pytest.mark.parametrize(
    ("profile", "tiny_confidence", "fan_status", "reason"),
    [
        ("unsure", 0.3, "complete", None),
        ("unsure", 0.9, "skipped", "confidence so far 0.90 is not below 0.75"),
        ("sure", 0.9, "complete", None),
        ("sure", 0.3, "skipped", "confidence so far 0.30 is not above 0.75"),
    ],
)
async def test_think_conditional_entry_runs_or_is_skipped(
    make_server, fake_llm, proto_dir, profile, tiny_confidence, fan_status, reason
):
    (proto_dir / "profiles.toml").write_text(PROFILES + CONDITIONAL)
    fake_llm.default = routed(
        {
            "FIRST": {"note": "n", "confidence": tiny_confidence},
            "JOIN": {"answer": "a", "confidence": tiny_confidence},
            "LIST": {"items": ["x", "y"], "confidence": 0.8},
        }
    )
    core = make_server()
    async with Client(core.server) as client:
        r = await client.call_tool("think", {"query": "Q?", "profile": profile})
    assert not r.is_error, r.content
    sc = r.structured_content
    entries = {e["entry"]: e for e in sc["entries"]}
    assert entries["tiny"]["status"] == "complete"
    assert entries["fan"]["status"] == fan_status
    assert entries["fan"]["skip_reason"] == reason
    fan_calls = [q for q in fake_llm.requests if "LIST <query>" in str(q.body["messages"])]
    if fan_status == "skipped":
        assert fan_calls == []  # the skipped tool never reached the provider
        assert sc["status"] == "complete"
        assert reason in "".join(c.text for c in r.content if c.type == "text")
    else:
        assert len(fan_calls) == 1
        assert {s["step_id"] for s in sc["steps"]} == {"first", "join", "list", "each"}
