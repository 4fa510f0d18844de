"""Resources, prompts, and the client-sampling provider with its fallbacks."""

from __future__ import annotations

import json
import re

import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.fakes.fake_llm import fill_schema
from tests.server.conftest import make_settings, routed
from tests.server.helpers import block_text

pytestmark = pytest.mark.anyio


def text_of(result) -> str:
    return "".join(c.text for c in result.content if c.type == "text")


# ----------------------------------------------------------------------------- resources
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_protocol_resources(make_server, proto_dir, mode):
    core = make_server()
    async with Client(core.server, mode=mode) as client:
        listed = (await client.list_resources()).resources
        assert {str(r.uri) for r in listed} == {"reasonkit://protocols/tiny", "reasonkit://protocols/fan"}
        assert all(r.mime_type == "application/toml" for r in listed)
        templates = (await client.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "reasonkit://protocols/{id}",
            "reasonkit://runs/{run_id}",
        }
        res = await client.read_resource("reasonkit://protocols/tiny")
        assert res.contents[0].mime_type == "application/toml"
        assert block_text(res.contents[0]) == (proto_dir / "tiny.toml").read_text()
        for uri in ("reasonkit://protocols/nope", "reasonkit://runs/nope", "reasonkit://other/x"):
            with pytest.raises(MCPError) as err:
                await client.read_resource(uri)
            assert err.value.error.code == types.INVALID_PARAMS
            assert "Resource not found" in err.value.error.message


# ----------------------------------------------------------------------------- prompts
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_one_prompt_per_thinktool(make_server, mode):
    core = make_server()
    async with Client(core.server, mode=mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"tiny", "fan"}
        args = {a.name: a for a in prompts["tiny"].arguments or []}
        assert set(args) == {"query", "count", "strict", "ratio", "context"}
        assert args["query"].required is True and args["count"].required is False
        assert args["query"].description == "The question."
        got = await client.get_prompt("tiny", {"query": "Is {{ x }} safe?", "count": "3"})
        text = block_text(got.messages[0].content)
        assert got.messages[0].role == "user"
        assert (
            "`tiny` tool" in text
            and "<query>\nIs {{ x }} safe?\n</query>" in text
            and "<count>\n3\n</count>" in text
        )
        with pytest.raises(MCPError) as err:
            await client.get_prompt("tiny", {})
        assert "input 'query' is required" in err.value.error.message
        with pytest.raises(MCPError):
            await client.get_prompt("nope", {})


# ----------------------------------------------------------------------------- sampling
def sampling_callback(calls: list):
    async def cb(context, params: types.CreateMessageRequestParams):
        calls.append(params)
        m = re.search(r"<schema>\s*(.*?)\s*</schema>", params.system_prompt or "", re.S)
        assert m, "the schema travels in the system prompt"
        obj = fill_schema(json.loads(m.group(1)))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="Here you go:\n" + json.dumps(obj)),
            model="client-model",
            stop_reason="endTurn",
        )

    return cb


def sampling_settings(fake_llm, tmp_path, provider):
    s = make_settings(fake_llm, tmp_path / "data", provider)
    s.features.sampling = True
    return s


async def test_sampling_uses_the_clients_model(make_server, fake_llm, tmp_path):
    core = make_server(settings=sampling_settings(fake_llm, tmp_path, None))
    calls: list = []
    async with Client(core.server, mode="legacy", sampling_callback=sampling_callback(calls)) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert not r.is_error, text_of(r)
    assert r.structured_content["status"] == "complete" and r.structured_content["provider"] == "sampling"
    assert len(calls) == 2 and fake_llm.requests == []
    assert calls[0].messages[0].content.text.startswith("FIRST")
    trace = core.store.get(r.structured_content["run_id"])
    assert trace["entries"][0]["steps"][0]["model"] == "client-model"


async def test_sampling_preferred_over_configured_provider_when_enabled(make_server, fake_llm, tmp_path):
    core = make_server(settings=sampling_settings(fake_llm, tmp_path, "openai"))
    calls: list = []
    async with Client(core.server, mode="legacy", sampling_callback=sampling_callback(calls)) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert r.structured_content["provider"] == "sampling" and calls and fake_llm.requests == []


async def test_sampling_falls_back_to_the_configured_provider(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({})
    core = make_server(settings=sampling_settings(fake_llm, tmp_path, "openai"))
    async with Client(core.server, mode="legacy") as client:  # no sampling capability declared
        r = await client.call_tool("tiny", {"query": "q"})
    assert not r.is_error and r.structured_content["provider"] == "openai" and len(fake_llm.requests) == 2


async def test_sampling_on_a_2026_connection_falls_back(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({})
    core = make_server(settings=sampling_settings(fake_llm, tmp_path, "openai"))
    calls: list = []
    async with Client(core.server, sampling_callback=sampling_callback(calls)) as client:
        assert client.protocol_version == "2026-07-28"
        r = await client.call_tool("tiny", {"query": "q"})
    assert r.structured_content["provider"] == "openai" and calls == []


@pytest.mark.parametrize(
    "mode, callback, needle",
    [
        ("legacy", False, "the MCP client did not declare the sampling capability"),
        ("auto", True, "2026-07-28 protocol does not allow server-to-client sampling"),
    ],
)
async def test_sampling_unavailable_and_no_provider_is_a_clear_error(
    make_server, fake_llm, tmp_path, mode, callback, needle
):
    core = make_server(settings=sampling_settings(fake_llm, tmp_path, None))
    kw = {"sampling_callback": sampling_callback([])} if callback else {}
    async with Client(core.server, mode=mode, **kw) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert r.is_error
    t = text_of(r)
    assert "client sampling is enabled but cannot be used here" in t and needle in t
    assert "ANTHROPIC_API_KEY" in t


async def test_sampling_as_default_provider_name(make_server, fake_llm, tmp_path):
    s = make_settings(fake_llm, tmp_path / "data", None, LLM_DEFAULT_PROVIDER="sampling")
    core = make_server(settings=s)
    calls: list = []
    async with Client(core.server, mode="legacy", sampling_callback=sampling_callback(calls)) as client:
        r = await client.call_tool("tiny", {"query": "q"})
        assert r.structured_content["provider"] == "sampling"
        bg = await client.call_tool("tiny", {"query": "q", "background": True})
    assert bg.is_error and "background runs cannot use client sampling" in text_of(bg)


async def test_sampling_declined_by_the_client_fails_the_run_clearly(make_server, fake_llm, tmp_path):
    core = make_server(settings=sampling_settings(fake_llm, tmp_path, None))

    async def decline(context, params):
        return types.ErrorData(code=types.INVALID_REQUEST, message="user rejected sampling")

    async with Client(core.server, mode="legacy", sampling_callback=decline) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert r.is_error and "declined the sampling request: user rejected sampling" in text_of(r)
    assert core.store.get(r.structured_content["run_id"])["status"] == "failed"
