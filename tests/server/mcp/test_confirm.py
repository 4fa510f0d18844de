"""`[server] confirm_above_usd`: a call whose estimated cost is over it asks the client's user first
(elicitation/create on handshake-era connections, an input request on 2026-07-28 ones); declined or
cancelled means not run, stored as a cancelled run that says so. With the SDK's real `Client`."""

from __future__ import annotations

import json

import mcp_types as types
import pytest
from mcp import Client

from reasonkit.server.mcp.confirm import estimated_cost
from tests.server.conftest import make_settings, routed
from tests.server.helpers import block_text, run
from tests.server.procs import HttpServer, rk_command

pytestmark = pytest.mark.anyio

MODES = ["legacy", "auto"]  # elicitation/create on a 2025 session; InputRequiredResult on 2026-07-28


def answering(asked: list, action: str, confirm: bool = True):
    async def callback(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        content = {"confirm": confirm} if action == "accept" else None
        return types.ElicitResult(action=action, content=content)

    return callback


def confirming_server(make_server, fake_llm, tmp_path, above: float = 0.00001, **server):
    fake_llm.default = routed({})
    s = make_settings(fake_llm, tmp_path / "data", "openai")
    s.server.confirm_above_usd = above
    for key, value in server.items():
        setattr(s.server, key, value)
    return make_server(settings=s)


@pytest.mark.parametrize("mode", MODES)
async def test_an_expensive_call_runs_once_confirmed(make_server, fake_llm, tmp_path, mode):
    core = confirming_server(make_server, fake_llm, tmp_path)
    asked: list = []
    async with Client(core.server, mode=mode, elicitation_callback=answering(asked, "accept")) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert not r.is_error, r.content
    assert r.structured_content["status"] == "complete" and len(fake_llm.requests) == 2
    assert len(asked) == 1
    message = asked[0].message
    assert "tiny" in message and "$" in message and "confirm_above_usd" in message
    assert asked[0].requested_schema["properties"]["confirm"]["type"] == "boolean"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("action", "confirm"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_a_declined_call_does_not_run_and_is_stored(
    make_server, fake_llm, tmp_path, mode, action, confirm
):
    core = confirming_server(make_server, fake_llm, tmp_path)
    asked: list = []
    callback = answering(asked, action, confirm)
    async with Client(core.server, mode=mode, elicitation_callback=callback) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert r.is_error and "not run" in block_text(r.content[0]) and "declined" in block_text(r.content[0])
    assert fake_llm.requests == [] and len(asked) == 1
    stored = core.store.list(limit=10)
    assert len(stored) == 1, stored
    run = core.store.get(stored[0]["run_id"])
    assert run["status"] == "cancelled" and "declined" in run["stop_reason"]
    assert run["name"] == "tiny" and run["inputs"] == {"query": "q"}


@pytest.mark.parametrize("mode", MODES)
async def test_a_cheap_call_is_not_asked_about(make_server, fake_llm, tmp_path, mode):
    core = confirming_server(make_server, fake_llm, tmp_path, above=100.0)
    asked: list = []
    async with Client(core.server, mode=mode, elicitation_callback=answering(asked, "decline")) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert not r.is_error and asked == [] and len(fake_llm.requests) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_without_elicitation_runs_as_before(make_server, fake_llm, tmp_path, mode):
    core = confirming_server(make_server, fake_llm, tmp_path)
    async with Client(core.server, mode=mode) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert not r.is_error and r.structured_content["status"] == "complete"


@pytest.mark.parametrize("mode", MODES)
async def test_refuse_when_the_client_cannot_be_asked(make_server, fake_llm, tmp_path, mode):
    core = confirming_server(make_server, fake_llm, tmp_path, confirm_unsupported="refuse")
    async with Client(core.server, mode=mode) as client:
        r = await client.call_tool("tiny", {"query": "q"})
    assert r.is_error and "confirm_above_usd" in block_text(r.content[0]) and fake_llm.requests == []


async def test_a_2026_answer_sent_unasked_still_counts(make_server, fake_llm, tmp_path):
    """The confirmation is the client's to give: a retry carrying a declined answer is not run."""
    core = confirming_server(make_server, fake_llm, tmp_path)
    async with Client(core.server, elicitation_callback=answering([], "accept")) as client:
        declined: types.InputResponses = {"confirm_cost": types.ElicitResult(action="decline")}
        r = await client.session.call_tool("tiny", {"query": "q"}, input_responses=declined)
    assert isinstance(r, types.CallToolResult) and r.is_error and fake_llm.requests == []


def test_the_estimate_grows_with_the_work(make_server, fake_llm, tmp_path):
    core = confirming_server(make_server, fake_llm, tmp_path)
    tiny = estimated_cost(core.settings, core.registry, "protocol", "tiny", {"query": "q"}, "gpt-4.1-mini")
    pair = estimated_cost(core.settings, core.registry, "profile", "pair", {"query": "q"}, "gpt-4.1-mini")
    assert 0 < tiny < pair
    assert estimated_cost(core.settings, core.registry, "protocol", "tiny", {"query": "q"}, "no-price") == 0


async def test_over_http_with_the_environment_variable_and_rk_runs(server_env, fake_llm, tmp_path):
    """`rk serve-mcp` over streamable HTTP (stateless), `REASONKIT_CONFIRM_ABOVE_USD` set: a 2026-07-28
    client is asked through an input request; the declined run is listed by `rk runs list`; a
    handshake-era client there cannot be asked and runs as without the setting."""
    fake_llm.default = routed({})
    env = {**server_env, "REASONKIT_CONFIRM_ABOVE_USD": "0.00001"}
    srv = HttpServer(env)
    try:
        asked: list = []
        async with Client(f"{srv.url}/mcp", elicitation_callback=answering(asked, "accept")) as client:
            ok = await client.call_tool("tiny", {"query": "q"})
        async with Client(f"{srv.url}/mcp", elicitation_callback=answering(asked, "decline")) as client:
            no = await client.call_tool("tiny", {"query": "q"})
        # a handshake-era client on stateless HTTP cannot be asked (no way back): it runs as before
        legacy = answering(asked, "decline")
        async with Client(f"{srv.url}/mcp", mode="legacy", elicitation_callback=legacy) as client:
            unasked = await client.call_tool("tiny", {"query": "q"})
    finally:
        assert srv.stop() == 0
    assert not ok.is_error and ok.structured_content["status"] == "complete" and len(asked) == 2
    assert no.is_error and "declined" in block_text(no.content[0])
    assert not unasked.is_error and len(asked) == 2 and len(fake_llm.requests) == 4
    listed = await run([*rk_command(), "runs", "list", "--format", "json"], env)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert sorted(r["status"] for r in runs) == ["cancelled", "complete", "complete"], runs
