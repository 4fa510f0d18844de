"""Confidence stays within 0..1 when a protocol's signals push it past 1, and a profile entry's
`when = { confidence_above = ... }` runs or skips the entry (reasonkit/engine/confidence.py, chain.py).

Driven by the in-process FakeProvider (reasonkit.providers.fake): every step answers the minimal
valid object for its schema with the model confidence the test chooses."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonkit.engine import Engine
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.fake import FakeProvider

pytestmark = pytest.mark.anyio

# One step; its `verdict` enum has a single value, so the fake always answers "great", and the map
# signal adds +0.3 on top of the model's own confidence.
BOOSTER = """
id = "booster"
name = "Booster"
description = "a tool whose signal adds a bonus"
result = { step = "judge", field = "answer" }
[inputs.query]
type = "string"
required = true
[inputs.context]
type = "string"
[[steps]]
id = "judge"
kind = "analyze"
prompt = "JUDGE {{ inputs.query }}{{#if inputs.context}} {{ inputs.context }}{{/if}}"
output = { type = "object", required = ["answer", "verdict", "confidence"], properties = { \
answer = { type = "string" }, verdict = { type = "string", enum = ["great"] }, \
confidence = { type = "number" } } }
[confidence]
[[confidence.signals]]
kind = "map"
step = "judge"
field = "verdict"
label = "verdict bonus"
values = { great = 0.3 }
"""

PLAIN = """
id = "plain"
name = "Plain"
description = "one step, the model's confidence as it is"
result = { step = "only", field = "answer" }
[inputs.query]
type = "string"
required = true
[inputs.context]
type = "string"
[[steps]]
id = "only"
kind = "generate"
prompt = "PLAIN {{ inputs.query }}{{#if inputs.context}} {{ inputs.context }}{{/if}}"
output = { type = "object", required = ["answer", "confidence"], properties = { \
answer = { type = "string" }, confidence = { type = "number" } } }
"""

PROFILES = """
[profiles.boosted]
description = "the booster alone"
min_confidence = 0.9
[[profiles.boosted.chain]]
protocol = "booster"

[profiles.sure]
description = "a second opinion only when already sure"
min_confidence = 0.5
[[profiles.sure.chain]]
protocol = "plain"
[[profiles.sure.chain]]
protocol = "booster"
when = { confidence_above = 0.9 }
[profiles.sure.chain.inputs]
query = "{{ inputs.query }}"
"""


@pytest.fixture
def registry(tmp_path: Path):
    d = tmp_path / "protocols"
    d.mkdir()
    (d / "booster.toml").write_text(BOOSTER)
    (d / "plain.toml").write_text(PLAIN)
    (d / "profiles.toml").write_text(PROFILES)
    reg = load_registry([d], include_builtin=False)
    assert not reg.problems, reg.problems
    return reg


def total(factors) -> float:
    return sum(f.delta for f in factors)


async def test_signal_bonus_above_one_is_clamped_to_one(registry):
    provider = FakeProvider(confidence=0.95)
    r = await Engine(registry, provider).run_protocol("booster", {"query": "q"})
    assert r.status == "complete", r.status
    # 0.95 (model) + 0.3 (verdict bonus) = 1.25, kept at 1.0 by an explained clamp factor
    assert r.confidence == 1.0
    signals = {f.signal: f.delta for f in r.confidence_breakdown}
    assert signals["clamp"] == pytest.approx(-0.25)
    assert total(r.confidence_breakdown) == pytest.approx(1.0)
    assert r.entries[0].confidence == 1.0 and r.meets_threshold


async def test_profile_with_a_bonus_above_one_stays_within_one(registry):
    r = await Engine(registry, FakeProvider(confidence=0.95)).run_profile("boosted", {"query": "q"})
    assert r.status == "complete"
    assert 0.0 <= r.confidence <= 1.0 and r.confidence == pytest.approx(1.0)
    assert all(e.confidence is not None and e.confidence <= 1.0 for e in r.entries)
    assert total(r.confidence_breakdown) == pytest.approx(r.confidence)


async def test_when_confidence_above_runs_the_entry_when_sure(registry):
    provider = FakeProvider(confidence=0.95)
    r = await Engine(registry, provider).run_profile("sure", {"query": "q"})
    status = {e.entry: e.status for e in r.entries}
    assert status == {"plain": "complete", "booster": "complete"}
    assert any("JUDGE" in str(q.messages) for q in provider.requests)


async def test_when_confidence_above_skips_the_entry_when_unsure(registry):
    provider = FakeProvider(confidence=0.5)
    r = await Engine(registry, provider).run_profile("sure", {"query": "q"})
    status = {e.entry: e.status for e in r.entries}
    assert status == {"plain": "complete", "booster": "skipped"}
    skipped = next(e for e in r.entries if e.entry == "booster")
    assert skipped.skip_reason == "confidence so far 0.50 is not above 0.9"
    assert not any("JUDGE" in str(q.messages) for q in provider.requests)
    assert r.complete and r.confidence == pytest.approx(0.5)
