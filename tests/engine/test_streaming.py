"""Replies as they are generated: the engine passes each call an `on_text` that turns the pieces
into `text` events naming the step (only when someone set `Engine.on_text`), never into progress
events; a reply the provider cut for repetition keeps its complete part, with a note."""

from __future__ import annotations

import pytest

from reasonkit.engine import Engine, Event
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.fake import FakeProvider
from tests.engine._scripted import by_prompt, step
from tests.fakes.fake_llm import Reply

pytestmark = pytest.mark.anyio


async def test_text_events_name_the_step_and_end_with_the_final_step(proto_dir):
    engine = Engine(load_registry([proto_dir], include_builtin=False), FakeProvider(items=3))
    texts: list[Event] = []
    progress: list[Event] = []
    engine.on_text = texts.append
    r = await engine.run_protocol("fanout", {"query": "q"}, on_event=progress.append)
    assert r.status == "complete"
    assert {(e.entry, e.step) for e in texts} == {("fanout", "list"), ("fanout", "each"), ("fanout", "join")}
    assert {e.item for e in texts if e.step == "each"} == {1, 2, 3}
    join = "".join(e.message for e in texts if e.step == "join")
    assert join == step(r, "join").calls[0].raw_response  # the final step's whole reply, in order
    assert texts[-1].step == "join"
    assert all(e.type == "text" for e in texts) and not any(e.type == "text" for e in progress)


async def test_nobody_watching_means_no_sink():
    provider = FakeProvider()
    engine = Engine(load_registry(include_builtin=True), provider)
    await engine.run_protocol("laserlogic", {"argument": "All swans are white, so this bird is white."})
    assert provider.requests and all(req.on_text is None for req in provider.requests)


async def test_a_reply_cut_for_repetition_is_salvaged_with_a_note(make_engine, fake_llm):
    loop = "the service should be split into smaller services for the team. " * 300
    fake_llm.default = by_prompt({"A:": [Reply(text='{"note": "' + loop + '", "confidence": 0.5}')]})
    r = await make_engine().run_protocol("linear", {"query": "q"})  # the fake is on loopback: it streams
    a = step(r, "a")
    assert a.calls[0].stop_reason == "repetition"
    assert len(a.calls[0].raw_response) < 1000  # not the 20,000 characters the server would send
    assert a.status == "degraded" and a.output["note"].startswith("the service should be split")
    assert any("reply cut for repetition" in n for n in a.notes), a.notes
    assert [c.purpose for c in a.calls] == ["main"]  # no repair: it would loop again
    assert any(f.signal == "truncated" for f in a.confidence_breakdown)
