"""The MCP surface through the SDK's in-memory Client: tools, schemas, coercion, errors, progress,
cancellation, deadlines, background runs. Both connection styles: the 2026-07-28 direct path
(mode="auto") and the handshake era (mode="legacy")."""

from __future__ import annotations

import json

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from reasonkit.protocol.loader import load_registry
from reasonkit.server.mcp.app import ReasonKitServer
from tests.fakes.fake_llm import Reply
from tests.server.conftest import make_settings, routed
from tests.server.helpers import block_text

pytestmark = pytest.mark.anyio
MODES = ["auto", "legacy"]


def text_of(result) -> str:
    return "".join(c.text for c in result.content if c.type == "text")


async def wait_for(pred, within: float = 5.0, step: float = 0.02):
    """Poll `pred` until it returns something truthy (and return it), at most `within` seconds."""
    for _ in range(int(within / step)):
        value = pred()
        if value:
            return value
        await anyio.sleep(step)
    raise AssertionError(f"condition not met within {within}s")


# ----------------------------------------------------------------------------- listing
@pytest.mark.parametrize("mode", MODES)
async def test_lists_every_builtin_protocol_think_and_run_result(make_server, mode):
    core = make_server(builtin=True)
    builtin = load_registry([], include_builtin=True)
    async with Client(core.server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    expected = set(builtin.protocols) | {"tiny", "fan", "think", "run_result"}
    assert set(tools) == expected
    assert {"gigathink", "laserlogic", "bedrock", "proofguard", "brutalhonesty"} <= set(tools)
    for pid, proto in builtin.protocols.items():
        t = tools[pid]
        assert t.description is not None and t.annotations is not None and t.output_schema is not None
        assert proto.description.split(".")[0] in t.description
        if proto.use_when:
            assert "Use when:" in t.description and "Do not use when:" in t.description
        # only what differs from the spec's defaults (openWorld true, idempotent false) is sent
        assert t.annotations.read_only_hint is True and t.annotations.open_world_hint in (None, True)
        assert t.annotations.idempotent_hint in (None, False) and t.annotations.destructive_hint is None
        props = t.input_schema["properties"]
        assert set(proto.inputs) <= set(props)
        assert props["deadline_s"]["type"] == "number" and props["background"]["type"] == "boolean"
        assert set(t.input_schema.get("required", [])) == {n for n, s in proto.inputs.items() if s.required}
        for name, spec in proto.inputs.items():
            assert props[name]["type"] == spec.type
            if spec.max_length:
                assert props[name]["maxLength"] == spec.max_length
        assert set(t.output_schema["required"]) == {"run_id", "status", "complete"}
        assert set(t.output_schema["properties"]) == {
            "run_id",
            "status",
            "complete",
        }  # lean: see test_tool_list
    think = tools["think"]
    assert think.input_schema["properties"]["profile"]["enum"] == sorted(["pair", "solo", *builtin.profiles])
    assert think.input_schema["required"] == ["query"]
    assert "context" in think.input_schema["properties"]
    rr = tools["run_result"]
    assert rr.input_schema["required"] == ["run_id"]
    assert rr.annotations is not None
    assert (
        rr.annotations.read_only_hint is False  # cancel: true stops a run
        and rr.annotations.destructive_hint is False
        and rr.annotations.idempotent_hint is True
        and rr.annotations.open_world_hint is False
    )


async def test_tiny_schema_types_and_descriptions(make_server):
    core = make_server()
    async with Client(core.server) as client:
        tiny = next(t for t in (await client.list_tools()).tools if t.name == "tiny")
    props = tiny.input_schema["properties"]
    assert props["query"] == {"type": "string", "description": "The question.", "maxLength": 200}
    assert (
        props["count"]["type"] == "integer"
        and props["strict"]["type"] == "boolean"
        and props["ratio"]["type"] == "number"
    )
    assert tiny.input_schema["required"] == ["query"]
    assert tiny.description is not None
    assert "Use when: Testing the server." in tiny.description
    assert "Do not use when: Anything real." in tiny.description
    assert "2 model calls" in tiny.description  # its cost, from its steps (deadline_s: see run_result)
    assert tiny.title == "Tiny"


# ----------------------------------------------------------------------------- calling
@pytest.mark.parametrize("mode", MODES)
async def test_call_each_builtin_tool(make_server, fake_llm, mode):
    from tests.fakes.fake_llm import schema_filler

    fake_llm.default = schema_filler
    core = make_server(builtin=True)
    builtin = load_registry([], include_builtin=True)
    async with Client(core.server, mode=mode) as client:
        for pid, proto in sorted(builtin.protocols.items()):
            args = {
                n: ("true" if s.type == "boolean" else "2" if s.type in ("integer", "number") else f"a {n}")
                for n, s in proto.inputs.items()
                if s.required
            }
            r = await client.call_tool(pid, args)
            assert not r.is_error, text_of(r)
            sc = r.structured_content
            assert sc["protocol"] == pid and sc["status"] == "complete" and sc["complete"] is True
            assert 0 <= sc["confidence"] <= 1 and sc["run_id"]
            assert "Confidence" in text_of(r)
            assert core.store.get(sc["run_id"])["status"] == "complete"
        r = await client.call_tool(
            "think", {"query": "Should we?", "profile": "quick" if "quick" in builtin.profiles else "solo"}
        )
        assert not r.is_error, text_of(r)
        assert r.structured_content["status"] in ("complete", "incomplete")


@pytest.mark.parametrize("mode", MODES)
async def test_lax_coercion_of_strings(make_server, fake_llm, mode):
    fake_llm.default = routed({})
    core = make_server()
    async with Client(core.server, mode=mode) as client:
        r = await client.call_tool(
            "tiny",
            {
                "query": "q",
                "count": "3",
                "strict": "true",
                "ratio": "0.5",
                "deadline_s": "30",
                "background": "false",
            },
        )
    assert not r.is_error, text_of(r)
    trace = core.store.get(r.structured_content["run_id"])
    assert trace["inputs"] == {"query": "q", "count": 3, "strict": True, "ratio": 0.5}
    assert trace["budget"]["seconds"] == 30
    assert "count=3 strict=true" in fake_llm.requests[0].text


@pytest.mark.parametrize(
    "args, needle",
    [
        ({}, "input 'query' is required"),
        ({"query": "q", "count": "three"}, "input 'count' must be integer"),
        ({"query": "q", "strict": "maybe"}, "input 'strict' must be boolean"),
        ({"query": "x" * 201}, "input 'query' is 201 characters long; the limit is 200"),
        ({"query": "q", "colour": "red"}, "has no input 'colour'"),
        ({"query": "q", "deadline_s": "soon"}, "input 'deadline_s' must be a number"),
        ({"query": "q", "deadline_s": -1}, "input 'deadline_s' must be > 0"),
        ({"query": "q", "background": "perhaps"}, "input 'background' must be boolean"),
    ],
)
async def test_bad_inputs_are_tool_errors(make_server, fake_llm, args, needle):
    core = make_server()
    async with Client(core.server) as client:
        r = await client.call_tool("tiny", args)
    assert r.is_error
    assert needle in text_of(r)
    assert fake_llm.requests == []
    assert core.store.list() == []


async def test_think_rejects_unknown_profile(make_server):
    core = make_server()
    async with Client(core.server) as client:
        r = await client.call_tool("think", {"query": "q", "profile": "nope"})
    assert r.is_error and "input 'profile' must be one of pair, solo" in text_of(r)


@pytest.mark.parametrize("mode", MODES)
async def test_think_runs_a_profile(make_server, fake_llm, mode):
    fake_llm.default = routed({"LIST": {"items": ["a", "b"], "confidence": 0.9}})
    core = make_server()
    async with Client(core.server, mode=mode) as client:
        r = await client.call_tool("think", {"query": "Q?", "profile": "pair", "context": "ctx"})
    assert not r.is_error, text_of(r)
    sc = r.structured_content
    assert sc["profile"] == "pair" and [e["entry"] for e in sc["entries"]] == ["tiny", "fan"]
    assert {s["step_id"] for s in sc["steps"]} == {"first", "join", "list", "each"}


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_tool_is_a_protocol_error(make_server, mode):
    core = make_server()
    async with Client(core.server, mode=mode) as client:
        with pytest.raises(MCPError) as err:
            await client.call_tool("nope", {"query": "q"})
    assert err.value.error.code == INVALID_PARAMS
    assert "Unknown tool: nope" in err.value.error.message


async def test_no_provider_is_a_clear_tool_error(make_server):
    core = make_server(provider=None, LOCAL_MODEL_AUTO="false")
    async with Client(core.server) as client:
        tools = await client.list_tools()  # listing works without any provider
        assert "tiny" in {t.name for t in tools.tools}
        r = await client.call_tool("tiny", {"query": "q"})
    assert r.is_error
    assert "no LLM provider is configured" in text_of(r) and "ANTHROPIC_API_KEY" in text_of(r)


async def test_provider_failing_every_step_is_a_tool_error_and_saved(make_server, fake_llm):
    fake_llm.default = lambda req: Reply(status=401, text="invalid api key")
    core = make_server()
    async with Client(core.server) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert r.is_error
    assert "the protocol `tiny` failed" in text_of(r) and "HTTP 401" in text_of(r)
    sc = r.structured_content
    assert sc["status"] == "failed"
    assert core.store.get(sc["run_id"])["status"] == "failed"


# ----------------------------------------------------------------------------- progress, deadline, cancel
@pytest.mark.parametrize("mode", MODES)
async def test_progress_notifications_per_step(make_server, fake_llm, mode):
    fake_llm.default = routed({"LIST": {"items": ["a", "b", "c"], "confidence": 0.9}})
    core = make_server()
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with Client(core.server, mode=mode) as client:
        r = await client.call_tool("fan", {"query": "q"}, progress_callback=on_progress)
    assert not r.is_error
    values = [p for p, _, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values), seen  # strictly increasing
    assert values[-1] == 3.0 and seen[-1][1] == 3.0
    messages = " ".join(m or "" for _, _, m in seen)
    assert "fan.list: ok" in messages and "fan.each[2]" in messages and "fan.join: ok" in messages


@pytest.mark.parametrize("mode", MODES)
async def test_deadline_returns_a_partial_result(make_server, fake_llm, mode):
    fake_llm.default = routed({"JOIN": (None, 3.0)})
    core = make_server()
    async with Client(core.server, mode=mode) as client:
        with anyio.fail_after(2.5):
            r = await client.call_tool("tiny", {"query": "q", "deadline_s": 0.5})
    assert not r.is_error, text_of(r)
    sc = r.structured_content
    assert sc["complete"] is False and sc["status"] == "incomplete"
    assert "time budget of 0.5s reached" in sc["stop_reason"]
    assert "Incomplete result" in text_of(r)
    assert [s["status"] for s in sc["steps"]] == ["ok", "cancelled"]
    assert core.store.get(sc["run_id"])["status"] == "incomplete"


async def test_default_deadline_comes_from_settings(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({"JOIN": (None, 3.0)})
    s = make_settings(fake_llm, tmp_path / "d2")
    s.server.tool_deadline_secs = 0.4
    core = make_server(settings=s)
    async with Client(core.server) as client:
        with anyio.fail_after(2.5):
            r = await client.call_tool("tiny", {"query": "q"})
    assert r.structured_content["complete"] is False


@pytest.mark.parametrize("mode", MODES)
async def test_cancellation_stops_llm_calls_and_saves_cancelled(make_server, fake_llm, mode):
    fake_llm.default = routed({"FIRST": (None, 0.05), "JOIN": (None, 5.0)})
    core = make_server()
    async with Client(core.server, mode=mode) as client:
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await client.call_tool("tiny", {"query": "q"})

            tg.start_soon(call)
            await wait_for(lambda: len(fake_llm.requests) >= 2)  # the slow JOIN call is in flight
            run_id = next(iter(core.live))
            tg.cancel_scope.cancel()
        trace = await wait_for(lambda: (t := core.store.get(run_id)) and t["status"] != "running" and t)
    assert trace["status"] == "cancelled" and trace["complete"] is False
    assert core.live == {} and core.status.inflight == 0
    await anyio.sleep(0.2)
    assert len(fake_llm.requests) == 2  # nothing new was started after the cancel


# ----------------------------------------------------------------------------- background + run_result
@pytest.mark.parametrize("mode", MODES)
async def test_background_run_and_run_result(make_server, fake_llm, mode):
    fake_llm.default = routed({"JOIN": (None, 0.4)})
    core = make_server()
    async with Client(core.server, mode=mode) as client:
        r = await client.call_tool("tiny", {"query": "q", "background": True})
        assert not r.is_error, text_of(r)
        sc = r.structured_content
        assert sc["status"] == "running" and sc["complete"] is False and sc["protocol"] == "tiny"
        run_id = sc["run_id"]
        assert "run_result" in text_of(r)
        assert core.store.get(run_id)["status"] == "running"  # recorded before the call returned

        mid = await client.call_tool("run_result", {"run_id": run_id})
        assert not mid.is_error and mid.structured_content["status"] == "running"
        assert "progress" in mid.structured_content and "still running" in text_of(mid)

        for _ in range(100):
            done = await client.call_tool("run_result", {"run_id": run_id})
            if done.structured_content["status"] != "running":
                break
            await anyio.sleep(0.05)
        assert (
            done.structured_content["status"] == "complete" and done.structured_content["answer"] == "answer"
        )
        assert "Confidence" in text_of(done)

        res = await client.read_resource(f"reasonkit://runs/{run_id}")
        trace = json.loads(block_text(res.contents[0]))
        assert res.contents[0].mime_type == "application/json"
        assert trace["run_id"] == run_id and trace["status"] == "complete"
        assert trace["entries"][0]["steps"][0]["prompt"].startswith("FIRST")


async def test_background_run_is_cancelled_and_saved_when_the_server_stops(make_server, fake_llm):
    fake_llm.default = routed({"JOIN": (None, 10.0)})
    core = make_server()
    async with Client(core.server) as client:
        r = await client.call_tool("tiny", {"query": "q", "background": True})
        run_id = r.structured_content["run_id"]
        await wait_for(lambda: len(fake_llm.requests) >= 2)
    trace = core.store.get(run_id)
    assert trace["status"] == "cancelled"


async def test_run_result_errors(make_server):
    core = make_server()
    async with Client(core.server) as client:
        r = await client.call_tool("run_result", {"run_id": "doesnotexist"})
        assert r.is_error and "no run with id 'doesnotexist'" in text_of(r)
        r = await client.call_tool("run_result", {})
        assert r.is_error and "input 'run_id' is required" in text_of(r)


async def test_run_result_of_a_foreground_run_and_of_an_interrupted_one(make_server, fake_llm):
    fake_llm.default = routed({})
    core = make_server()
    async with Client(core.server) as client:
        r = await client.call_tool("tiny", {"query": "q"})
        again = await client.call_tool("run_result", {"run_id": r.structured_content["run_id"]})
        assert again.structured_content["answer"] == r.structured_content["answer"]
        # a trace the store marked interrupted (its process died)
        trace = core.store.get(r.structured_content["run_id"])
        trace.update(
            run_id="deadbeef", status="interrupted", complete=False, stop_reason="interrupted: process ended"
        )
        core.store.save_trace(trace)
        gone = await client.call_tool("run_result", {"run_id": "deadbeef"})
    assert not gone.is_error
    assert gone.structured_content["status"] == "interrupted"
    assert "Interrupted run" in text_of(gone)


# ----------------------------------------------------------------------------- metrics
async def test_metrics_move_after_calls(make_server, fake_llm):
    fake_llm.default = routed({})
    core = make_server()
    async with Client(core.server) as client:
        await client.list_tools()
        await client.call_tool("tiny", {"query": "q"})
        await client.call_tool("tiny", {})  # input error
    body = core.metrics.render()[0].decode()
    assert 'reasonkit_requests_total{method="tiny",profile="tiny",status="complete"} 1.0' in body
    assert 'reasonkit_requests_total{method="tiny",profile="tiny",status="error"} 1.0' in body
    assert 'reasonkit_requests_total{method="tools/list",profile="",status="ok"} 1.0' in body
    assert 'reasonkit_request_duration_seconds_count{method="tiny"} 2.0' in body
    assert 'reasonkit_confidence_score_count{profile="tiny"} 1.0' in body
    assert 'reasonkit_step_duration_seconds_count{protocol="tiny",step="first"} 1.0' in body
    assert 'reasonkit_provider_call_duration_seconds_count{provider="openai"} 2.0' in body
    assert 'reasonkit_llm_tokens_total{provider="openai",type="input"}' in body
    assert "reasonkit_inflight_requests 0.0" in body


async def test_reserved_protocol_ids_are_not_exposed(fake_llm, proto_dir, tmp_path):
    (proto_dir / "think.toml").write_text(
        (proto_dir / "tiny.toml").read_text().replace('id = "tiny"', 'id = "think"')
    )
    reg = load_registry([proto_dir], include_builtin=False)
    core = ReasonKitServer(make_settings(fake_llm, tmp_path / "d"), reg)
    try:
        names = [t.name for t in core.tools]
        assert names.count("think") == 1  # the profile tool, not the protocol
    finally:
        core.service.close()


# ----------------------------------------------------------------------------- provider factory
async def test_provider_factory_is_used_and_its_failure_is_a_tool_error(fake_llm, proto_dir, tmp_path):
    from reasonkit.observability.metrics import Metrics
    from reasonkit.providers.base import LLMResponse, Provider, Usage
    from tests.fakes.fake_llm import fill_schema

    class Local(Provider):
        name, model = "local", "local-1"

        async def complete(self, request):
            return LLMResponse(
                text=json.dumps(fill_schema(request.schema)),
                parsed=None,
                stop_reason="end",
                usage=Usage(3, 4),
                provider="local",
                model="local-1",
            )

    reg = load_registry([proto_dir], include_builtin=False)
    settings = make_settings(fake_llm, tmp_path / "d", None)
    good = ReasonKitServer(settings, reg, provider_factory=lambda s: Local(), metrics=Metrics())

    def broken(s):
        raise RuntimeError("boom")

    bad = ReasonKitServer(settings, reg, provider_factory=broken, metrics=Metrics())
    try:
        async with Client(good.server) as client:
            r = await client.call_tool("tiny", {"query": "q"})
        assert not r.is_error and r.structured_content["provider"] == "local"
        assert (
            'reasonkit_llm_tokens_total{provider="local",type="output"} 8.0'
            in good.metrics.render()[0].decode()
        )
        async with Client(bad.server) as client:
            r = await client.call_tool("tiny", {"query": "q"})
        assert r.is_error and "cannot set up the LLM provider: RuntimeError: boom" in text_of(r)
    finally:
        good.service.close()
        bad.service.close()


@pytest.mark.parametrize("mode", MODES)
async def test_provider_failure_fails_the_think_call_at_once(make_server, fake_llm, mode):
    """A dead key stops the profile after the first call; the MCP result is an error, and the stored
    run is `failed` like the structured content says (issue 11, point 3)."""
    fake_llm.default = lambda req: Reply(status=401, text="bad key", error_type="invalid_request_error")
    core = make_server(builtin=True)
    async with Client(core.server, mode=mode) as client:
        r = await client.call_tool("think", {"query": "Should we?", "profile": "balanced"})
    assert r.is_error and "provider failed" in text_of(r)
    sc = r.structured_content
    assert sc["status"] == "failed"
    assert len([q for q in fake_llm.requests if q.path.endswith("/chat/completions")]) == 1
    assert core.store.get(sc["run_id"])["status"] == "failed"


async def test_unenforceable_cost_budget_is_noted_in_the_tool_result(make_server, fake_llm, tmp_path):
    """`[engine] budget_usd` with a model whose price is unknown: the result says the budget is not
    enforced, in the structured content and the text (issue 11, point 5)."""
    fake_llm.default = routed({})
    settings = make_settings(fake_llm, tmp_path / "data", "openai")
    settings.llm.providers["openai"].model = "mystery-model-1"
    settings.engine.budget_usd = 0.01
    core = make_server(settings=settings)
    async with Client(core.server) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert not r.is_error, text_of(r)
    sc = r.structured_content
    assert sc["budget_enforced"] is False and "mystery-model-1" in sc["budget_note"]
    assert "not enforced" in text_of(r)
