"""Small-model caps (reasonkit/engine/caps.py): smaller item counts, max_tokens and samples; the
prompt and schema say the smaller numbers; the result's notes say what changed."""

from __future__ import annotations

import pytest

from reasonkit.engine import Engine, StepCaps
from reasonkit.engine.caps import cap_lines, cap_step
from reasonkit.errors import ConfigError, ReasonKitError
from reasonkit.protocol.loader import load_registry
from tests.engine._scripted import ScriptedProvider, step

pytestmark = pytest.mark.anyio


def test_caps_must_be_positive_whole_numbers():
    with pytest.raises(ConfigError, match="max_items"):
        StepCaps(max_items=0)
    with pytest.raises(ReasonKitError, match="samples"):
        StepCaps(samples=True)  # type: ignore[arg-type]


def builtin(protocol_id: str):
    reg = load_registry(include_builtin=True)
    return reg.protocol(protocol_id)


def test_capped_step_says_the_smaller_numbers_in_prompt_and_schema():
    dims = builtin("gigathink").step("dimensions")
    assert (dims.min_items, dims.max_items) == (10, 12) and "10 to 12" in dims.prompt
    capped, max_tokens, changes = cap_step(dims, StepCaps(max_items=4, max_tokens=384), 2500)
    assert (capped.min_items, capped.max_items) == (4, 4)
    assert "choose 4 distinct perspectives" in capped.prompt and "10 to 12" not in capped.prompt
    prop = capped.output["properties"]["perspectives"]
    assert (prop["minItems"], prop["maxItems"]) == (4, 4)
    assert "10-12" not in prop["description"]
    assert max_tokens == 384
    assert changes == {"items": "asked for 4 items instead of 10-12", "max_tokens": "2500 -> 384"}
    assert dims.min_items == 10  # the registry's step is untouched


def test_caps_that_change_nothing_say_nothing():
    dims = builtin("gigathink").step("dimensions")
    capped, max_tokens, changes = cap_step(dims, StepCaps(max_items=20, max_tokens=9000, samples=5), 2500)
    assert capped is dims and max_tokens == 2500 and changes == {}
    assert cap_step(dims, None, 2500) == (dims, 2500, {})


def test_cap_lines_one_per_kind():
    notes = {
        "items": {"gigathink.dimensions": "asked for 4 items instead of 10-12"},
        "max_tokens": {"a.x": "2048 -> 384", "a.y": "2048 -> 384", "a.z": "4000 -> 384"},
        "samples": {"b.v": "3 -> 1"},
    }
    assert cap_lines(notes) == [
        "small-model caps: gigathink.dimensions asked for 4 items instead of 10-12",
        "small-model caps: max_tokens 2048 -> 384 (a.x, a.y); 4000 -> 384 (a.z)",
        "small-model caps: samples 3 -> 1 (b.v)",
    ]


async def test_engine_with_caps_asks_for_fewer_items_tokens_and_samples():
    provider = ScriptedProvider()
    reg = load_registry(include_builtin=True)
    engine = Engine(reg, provider, max_tokens=2048, caps=StepCaps(max_items=4, max_tokens=384, samples=1))
    r = await engine.run_protocol("gigathink", {"query": "Should we adopt a four-day week?"})
    assert r.status in ("complete", "incomplete")
    dims_request = next(q for q in provider.requests if "Choose the perspectives" in q.messages[0]["content"])
    assert "choose 4 distinct perspectives" in dims_request.messages[0]["content"]
    assert dims_request.schema is not None
    assert dims_request.schema["properties"]["perspectives"]["maxItems"] == 4
    assert all(q.max_tokens <= 384 for q in provider.requests)
    assert len(step(r, "explore").items) == 4
    assert any(
        n.startswith("small-model caps: gigathink.dimensions asked for 4 items instead of 10-12")
        for n in r.notes
    )
    assert any(n.startswith("small-model caps: max_tokens") and "-> 384" in n for n in r.notes)


async def test_samples_cap(scripted, proto_dir):
    text = (proto_dir / "linear.toml").read_text().replace('id = "b"\n', 'id = "b"\nsamples = 3\n')
    (proto_dir / "linear.toml").write_text(text)
    engine, provider = scripted({}, caps=StepCaps(samples=1))
    r = await engine.run_protocol("linear", {"query": "q"})
    assert len([q for q in provider.requests if q.messages[0]["content"].startswith("B:")]) == 1
    assert r.notes == ["small-model caps: samples 3 -> 1 (linear.b)"]


async def test_no_caps_no_notes(scripted):
    engine, _ = scripted({})
    r = await engine.run_protocol("linear", {"query": "q"})
    assert r.notes == []
