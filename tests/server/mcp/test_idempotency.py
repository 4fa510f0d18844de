"""Idempotent tool calls through the SDK's in-memory Client: a repeat with the same `idempotency_key`
costs no LLM call (counted at the fake LLM server), concurrent duplicates share one run, the same key
with other arguments is an error, and a key expires after `[server] idempotency_ttl_secs`."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from tests.fakes.fake_llm import schema_filler
from tests.server.conftest import make_settings, routed

pytestmark = pytest.mark.anyio


def text_of(result) -> str:
    return "".join(c.text for c in result.content if c.type == "text")


async def test_schema_offers_idempotency_key(make_server):
    core = make_server()
    async with Client(core.server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("tiny", "think"):
        prop = tools[name].input_schema["properties"]["idempotency_key"]
        assert prop["type"] == "string" and prop["maxLength"] == 200
    assert "idempotency_key" not in tools["run_result"].input_schema["properties"]


async def test_same_key_twice_runs_once(make_server, fake_llm):
    fake_llm.default = schema_filler
    core = make_server()
    args = {"query": "q1", "idempotency_key": "req-0001"}
    async with Client(core.server) as client:
        first = await client.call_tool("tiny", args)
        calls = len(fake_llm.requests)
        second = await client.call_tool("tiny", dict(args, deadline_s=30))  # control inputs don't count
    assert calls == 2 and len(fake_llm.requests) == calls
    assert not first.is_error and not second.is_error
    assert second.structured_content["run_id"] == first.structured_content["run_id"]
    assert second.structured_content["answer"] == first.structured_content["answer"]
    assert second.structured_content["tokens"] == first.structured_content["tokens"]
    assert core.service.store.count() == 1


async def test_without_key_every_call_runs(make_server, fake_llm):
    fake_llm.default = schema_filler
    core = make_server()
    async with Client(core.server) as client:
        a = await client.call_tool("tiny", {"query": "q1"})
        b = await client.call_tool("tiny", {"query": "q1"})
    assert a.structured_content["run_id"] != b.structured_content["run_id"]
    assert len(fake_llm.requests) == 4


async def test_concurrent_duplicates_share_one_run(make_server, fake_llm):
    fake_llm.default = routed({"FIRST": (None, 0.3)})  # the first step takes a while
    core = make_server()
    args = {"query": "slow one", "idempotency_key": "dup-key"}
    results: list = []
    async with Client(core.server) as client:

        async def one() -> None:
            results.append(await client.call_tool("tiny", dict(args)))

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(one)
    assert len(results) == 4 and not any(r.is_error for r in results)
    assert len({r.structured_content["run_id"] for r in results}) == 1
    assert {r.structured_content["status"] for r in results} == {"complete"}
    assert len(fake_llm.requests) == 2  # one run: its two steps


async def test_same_key_other_arguments_is_an_error(make_server, fake_llm):
    fake_llm.default = schema_filler
    core = make_server()
    async with Client(core.server) as client:
        ok = await client.call_tool("tiny", {"query": "q1", "idempotency_key": "k-1"})
        other = await client.call_tool("tiny", {"query": "q2", "idempotency_key": "k-1"})
        other_tool = await client.call_tool("think", {"query": "q1", "idempotency_key": "k-1"})
    assert not ok.is_error
    for bad in (other, other_tool):
        assert bad.is_error
        assert "idempotency_key 'k-1' was already used for a call with other arguments" in text_of(bad)
    assert len(fake_llm.requests) == 2


async def test_bad_keys_are_clear_errors(make_server, fake_llm):
    fake_llm.default = schema_filler
    core = make_server()
    async with Client(core.server) as client:
        for bad in ("x" * 201, "   ", 42):
            result = await client.call_tool("tiny", {"query": "q", "idempotency_key": bad})
            assert result.is_error and "input 'idempotency_key' must be a non-blank string" in text_of(result)
    assert fake_llm.requests == []


async def test_key_expires_after_ttl(make_server, fake_llm):
    fake_llm.default = schema_filler
    core = make_server(IDEMPOTENCY_TTL="0.2")
    assert core.settings.server.idempotency_ttl_secs == 0.2
    args = {"query": "q1", "idempotency_key": "short-lived"}
    async with Client(core.server) as client:
        first = await client.call_tool("tiny", args)
        await anyio.sleep(0.3)  # past the key's lifetime
        again = await client.call_tool("tiny", args)
    assert again.structured_content["run_id"] != first.structured_content["run_id"]
    assert len(fake_llm.requests) == 4


async def test_background_repeat_returns_the_same_run(make_server, fake_llm):
    fake_llm.default = routed({"FIRST": (None, 0.2)})
    core = make_server()
    args = {"query": "bg", "background": True, "idempotency_key": "bg-1"}
    async with Client(core.server) as client:
        started = await client.call_tool("tiny", args)
        repeat = await client.call_tool("tiny", args)
        run_id = started.structured_content["run_id"]
        assert repeat.structured_content["run_id"] == run_id
        with anyio.fail_after(10):
            while True:
                polled = await client.call_tool("run_result", {"run_id": run_id})
                if polled.structured_content["status"] != "running":
                    break
                await anyio.sleep(0.05)
        done = await client.call_tool("tiny", args)  # finished now: the full result
    assert done.structured_content["status"] == "complete" and done.structured_content["run_id"] == run_id
    assert len(fake_llm.requests) == 2


async def test_key_without_a_run_store_is_refused(make_server, fake_llm, tmp_path):
    fake_llm.default = schema_filler
    settings = make_settings(fake_llm, tmp_path / "data")
    settings.storage.save_runs = False
    core = make_server(settings=settings)
    async with Client(core.server) as client:
        result = await client.call_tool("tiny", {"query": "q", "idempotency_key": "k"})
        plain = await client.call_tool("tiny", {"query": "q"})
    assert result.is_error and "idempotency_key needs the run store" in text_of(result)
    assert not plain.is_error


async def test_a_key_whose_run_was_pruned_starts_a_new_run(make_server, fake_llm):
    """Issue 23, hole 12: retention deleted the first run; a repeat used to wait its whole deadline
    for it and then fail. The key is stale with its run: the repeat runs again, at once."""
    fake_llm.default = schema_filler
    core = make_server()
    args = {"query": "q1", "idempotency_key": "req-pruned"}
    async with Client(core.server) as client:
        first = await client.call_tool("tiny", args)
        assert core.service.store.prune(max_count=0) == 1
        with anyio.fail_after(5):
            again = await client.call_tool("tiny", dict(args, deadline_s=20))
        repeat = await client.call_tool("tiny", dict(args, deadline_s=20))
    assert not again.is_error, text_of(again)
    assert again.structured_content["run_id"] != first.structured_content["run_id"]
    assert repeat.structured_content["run_id"] == again.structured_content["run_id"]  # the key holds again
