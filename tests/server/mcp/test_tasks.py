"""Issue 24 point 1, the tasks extension (SEP-2663) over streamable HTTP on the 2026-07-28 wire: a
client that declares `io.modelcontextprotocol/tasks` on its request gets a task handle for a
background call or one expected to outlast its deadline, polls `tasks/get` to the `CallToolResult`
the call would have returned, and can cancel it; a client that does not declare it never gets a
task; another principal's task reads exactly like an unknown id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest

from reasonkit.providers.base import LLMRequest, LLMResponse, Provider
from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.security import SecurityPolicy
from reasonkit.server.mcp.tasks import CANCEL_REASON, EXTENSION, task_deadline, wants_task
from tests.server.conftest import make_settings, routed
from tests.server.helpers import asgi_client

pytestmark = pytest.mark.anyio
MODERN = "2026-07-28"
A, B = "a" * 40, "b" * 40


def request(method: str, params: dict[str, Any], *, tasks: bool = True, id: int = 1) -> dict[str, Any]:
    """A 2026-07-28 request: the envelope in `_meta`, the tasks extension in its capabilities."""
    capabilities: dict[str, Any] = {"extensions": {EXTENSION: {}}} if tasks else {}
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": {**params, "_meta": meta}}


class Modern:
    """Raw 2026-07-28 JSON-RPC over the HTTP app, as one token."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None):
        self.http, self.token = http, token

    async def send(self, method: str, params: dict[str, Any], *, tasks: bool = True) -> dict[str, Any]:
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-protocol-version": MODERN,
            "mcp-method": method,
        }
        name = params.get("name") or params.get("taskId")
        if name:
            headers["mcp-name"] = name
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        resp = await self.http.post("/mcp", json=request(method, params, tasks=tasks), headers=headers)
        body: dict[str, Any] = resp.json()
        assert resp.status_code == (400 if "error" in body else 200), resp.text[:500]
        return body

    async def call(self, tool: str, arguments: dict[str, Any], *, tasks: bool = True) -> dict[str, Any]:
        body = await self.send("tools/call", {"name": tool, "arguments": arguments}, tasks=tasks)
        result: dict[str, Any] = body["result"]
        return result

    async def task(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = (await self.send("tasks/get", {"taskId": task_id}))["result"]
        return result

    async def until_done(self, task_id: str, within: float = 20.0) -> dict[str, Any]:
        return await until(lambda: self.task(task_id), lambda t: t["status"] != "working", within)


async def until(
    get: Callable[[], Awaitable[dict[str, Any]]], done: Callable[[dict[str, Any]], bool], within: float
) -> dict[str, Any]:
    """`get()` again until `done` says so (fails after `within` seconds)."""
    with anyio.fail_after(within):
        while True:
            value = await get()
            if done(value):
                return value
            await anyio.sleep(0.05)


@pytest.fixture(autouse=True)
def answers(fake_llm: Any) -> None:
    """Every step answered at once unless a test says otherwise."""
    fake_llm.default = routed({})


def app_for(core: Any) -> Any:
    core.bind_host = "127.0.0.1"
    return build_http_app(core, "127.0.0.1")


async def test_discover_advertises_the_extension(make_server):
    core = make_server()
    async with asgi_client(app_for(core)) as http:
        found = await Modern(http).send("server/discover", {})
    assert found["result"]["capabilities"]["extensions"] == {EXTENSION: {}}


async def test_a_background_call_is_a_task_polled_to_its_tool_result(make_server, fake_llm):
    fake_llm.default = routed({}, delay=0.2)
    core = make_server()
    async with asgi_client(app_for(core)) as http:
        client = Modern(http)
        created = await client.call("tiny", {"query": "q", "background": True})
        assert created["resultType"] == "task" and created["status"] == "working"
        assert {"taskId", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"} <= set(created)
        assert len(created["taskId"]) >= 32  # secrets.token_urlsafe(24): 192 random bits
        run_id = created["statusMessage"].rsplit(" ", 1)[-1]  # "started tiny as run <id>"
        done = await client.until_done(created["taskId"])
        plain = await client.call("tiny", {"query": "q"})  # the same call, waited for
    assert done["status"] == "completed" and done["resultType"] == "complete"
    assert done["taskId"] == created["taskId"] and done["createdAt"] == created["createdAt"]
    result = done["result"]
    assert result["structuredContent"]["run_id"] == run_id
    assert result["structuredContent"]["status"] == "complete" and not result.get("isError")
    assert set(result) == set(plain) - {"_meta"}
    assert result["content"][0]["text"].replace(run_id, "<id>")[:40] == plain["content"][0]["text"][:40]


async def test_the_rule_and_a_tasks_time():
    assert wants_task(True, 1.0, 600.0)  # background: true
    assert not wants_task(False, 50.0, 600.0)  # what a client with a ~60 s timeout can wait for
    assert wants_task(False, 51.0, 600.0)
    assert wants_task(False, 30.0, 10.0)  # over its deadline
    # a task without deadline_s: its estimate plus a tenth, within [the default deadline, 3600 s]
    assert task_deadline(1800.0, 600.0) == 1980.0
    assert task_deadline(10.0, 50.0) == 50.0 and task_deadline(5000.0, 600.0) == 3600.0


async def test_a_call_expected_to_outlast_its_deadline_is_a_task(make_server, fake_llm):
    """tiny is expected to take at most 30 s on a hosted model: under 50 s, a plain call; with
    deadline_s 10 it would be cut short, so it becomes a task (and keeps its deadline). The `pair`
    profile is expected to take 75 s: a task."""
    core = make_server()
    async with asgi_client(app_for(core)) as http:
        client = Modern(http)
        plain = await client.call("tiny", {"query": "q"})
        short = await client.call("tiny", {"query": "q", "deadline_s": 10})
        long = await client.call("think", {"query": "q", "profile": "pair"})
        budgets = []
        for task in (short, long):
            assert task["resultType"] == "task", task
            assert (await client.until_done(task["taskId"]))["status"] == "completed"
            run_id = task["statusMessage"].rsplit(" ", 1)[-1]
            budgets.append(core.service.store.get(run_id)["budget"]["seconds"])
    # deadline_s is kept; without it the task gets its estimate (75 s) plus a tenth
    assert budgets == [10.0, 82.0]
    assert plain.get("resultType") == "complete" and plain["structuredContent"]["status"] == "complete", plain


async def test_no_task_for_a_client_that_does_not_declare_the_extension(make_server, fake_llm):
    core = make_server()
    async with asgi_client(app_for(core)) as http:
        client = Modern(http)
        started = await client.call("tiny", {"query": "q", "background": True}, tasks=False)
        long = await client.call("think", {"query": "q", "profile": "pair"}, tasks=False)
    assert started.get("resultType") == "complete" and "taskId" not in started
    assert "run_result" in started["content"][0]["text"]  # the legacy background start
    assert long.get("resultType") == "complete" and long["structuredContent"]["run_id"]


async def test_a_handshake_era_client_never_gets_a_task(make_server):
    """SEP-2663 is not defined before 2026-07-28: declaring it on an older connection changes nothing."""
    from mcp import Client
    from mcp.client.extension import ClientExtension

    class Tasks(ClientExtension):
        identifier = EXTENSION

    core = make_server()
    async with Client(core.server, mode="legacy", extensions=[Tasks()]) as client:
        result = await client.call_tool("tiny", {"query": "q", "background": True})
    assert result.structured_content is not None and result.structured_content["status"] == "running"


async def test_tasks_cancel_stops_the_run_and_stores_it_cancelled(make_server, fake_llm):
    fake_llm.default = routed({"FIRST": (None, 0.05), "JOIN": (None, 30.0)})
    core = make_server()
    async with asgi_client(app_for(core)) as http:
        client = Modern(http)
        created = await client.call("tiny", {"query": "q", "background": True})
        task_id = created["taskId"]
        # the first step is done: the slow second one is in flight
        await until(lambda: client.task(task_id), lambda t: "1/2" in t["statusMessage"], 10)
        acked = await client.send("tasks/cancel", {"taskId": task_id})
        assert acked["result"].get("resultType") == "complete" and "error" not in acked
        task = await client.until_done(task_id, within=5)
    assert task["status"] == "cancelled" and task["statusMessage"] == CANCEL_REASON
    run_id = created["statusMessage"].rsplit(" ", 1)[-1]
    stored = core.service.store.get(run_id)
    assert stored["status"] == "cancelled" and stored["stop_reason"] == CANCEL_REASON


async def test_tasks_update_is_validated_and_acknowledged(make_server):
    core = make_server()
    async with asgi_client(app_for(core)) as http:
        client = Modern(http)
        task_id = (await client.call("tiny", {"query": "q", "background": True}))["taskId"]
        ok = await client.send("tasks/update", {"taskId": task_id, "inputResponses": {"never-asked": {}}})
        missing = await client.send("tasks/update", {"taskId": task_id})
        wrong = await client.send("tasks/update", {"taskId": task_id, "inputResponses": "yes"})
        unknown = await client.send("tasks/update", {"taskId": "x" * 32, "inputResponses": {}})
        await client.until_done(task_id)
    assert ok["result"].get("resultType") == "complete"
    for bad in (missing, wrong, unknown):
        assert bad["error"]["code"] == -32602, bad


async def test_another_principal_gets_unknown_task(make_server, fake_llm, tmp_path):
    s = make_settings(fake_llm, tmp_path / "data")
    core = make_server(settings=s)
    core.security = SecurityPolicy.from_settings(
        s, "127.0.0.1", {"REASONKIT_AUTH_TOKENS": f"alice:{A},bob:{B}"}
    )
    async with asgi_client(app_for(core)) as http:
        alice, bob = Modern(http, A), Modern(http, B)
        task_id = (await alice.call("tiny", {"query": "q", "background": True}))["taskId"]
        unknown = "u" * len(task_id)
        calls: list[tuple[str, dict[str, Any]]] = [
            ("tasks/get", {}),
            ("tasks/cancel", {}),
            ("tasks/update", {"inputResponses": {}}),
        ]
        for method, extra in calls:
            theirs = await bob.send(method, {"taskId": task_id, **extra})
            none = await bob.send(method, {"taskId": unknown, **extra})
            assert theirs["error"] == none["error"] and theirs["error"]["code"] == -32602
        done = await alice.until_done(task_id)  # bob's cancel did not reach it
    assert done["status"] == "completed"


async def test_run_result_cancels_a_background_run(make_server, fake_llm):
    """The same cancel for clients without tasks: `run_result` with `cancel: true`."""
    fake_llm.default = routed({"FIRST": (None, 30.0)})
    core = make_server()
    async with asgi_client(app_for(core)) as http:
        client = Modern(http)
        started = await client.call("tiny", {"query": "q", "background": True}, tasks=False)
        run_id = started["structuredContent"]["run_id"]
        asked = await client.call("run_result", {"run_id": run_id, "cancel": True}, tasks=False)
        assert "Cancel requested" in asked["structuredContent"]["message"]
        await until(
            lambda: client.call("run_result", {"run_id": run_id}, tasks=False),
            lambda r: r["structuredContent"]["status"] != "running",
            5,
        )
    stored = core.service.store.get(run_id)
    assert stored["status"] == "cancelled" and stored["stop_reason"] == CANCEL_REASON


async def test_the_task_methods_need_the_extension_declared(make_server):
    """SEP-2663: `tasks/*` from a request without the extension is -32021 naming it, even for a task
    that exists (the suite's tasks-capability-negotiation)."""
    core = make_server()
    async with asgi_client(app_for(core)) as http:
        client = Modern(http)
        task_id = (await client.call("tiny", {"query": "q", "background": True}))["taskId"]
        extras: list[tuple[str, dict[str, Any]]] = [
            ("tasks/get", {}),
            ("tasks/cancel", {}),
            ("tasks/update", {"inputResponses": {}}),
        ]
        for method, extra in extras:
            refused = await client.send(method, {"taskId": task_id, **extra}, tasks=False)
            assert refused["error"]["code"] == -32021, refused
            assert refused["error"]["data"] == {"requiredCapabilities": {"extensions": {EXTENSION: {}}}}
        done = await client.until_done(task_id)
    assert done["status"] == "completed"


class Crashing(Provider):
    """A provider that raises what no engine step expects: the engine crashes."""

    name, model = "crashing", "crashing"

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise RuntimeError("boom")


async def test_a_run_the_engine_crashed_on_is_a_failed_task(make_server):
    """A protocol-level error is `failed` with an `error` and no `result` (SEP-2663 error semantics),
    not `completed` with a tool error (the suite's tasks-lifecycle, protocol_error_job)."""
    core = make_server()
    core.provider_factory = lambda _settings: Crashing()
    async with asgi_client(app_for(core)) as http:
        client = Modern(http)
        task_id = (await client.call("tiny", {"query": "q", "background": True}))["taskId"]
        done = await client.until_done(task_id)
    assert done["status"] == "failed" and "result" not in done, done
    assert done["error"]["code"] == -32603 and "internal error" in done["error"]["message"]


async def test_a_task_method_whose_mcp_name_header_is_another_task_is_refused(make_server):
    """SEP-2663 routing headers: `Mcp-Name` of `tasks/*` mirrors `params.taskId`; a mismatch is
    -32020 HeaderMismatch with HTTP 400 (the SDK checks it for tools/call, resources/read and
    prompts/get only; the suite's tasks-request-headers)."""
    core = make_server()
    async with asgi_client(app_for(core)) as http:
        client = Modern(http)
        task_id = (await client.call("tiny", {"query": "q", "background": True}))["taskId"]
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-protocol-version": MODERN,
            "mcp-method": "tasks/get",
            "mcp-name": "another-task",
        }
        resp = await http.post("/mcp", json=request("tasks/get", {"taskId": task_id}), headers=headers)
        matched = await client.task(task_id)  # Modern sends the matching Mcp-Name
        await client.until_done(task_id)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == -32020, resp.text
    assert matched["taskId"] == task_id
