"""RunSlots control (issue 12, point 1): a burst beyond `[server] max_concurrent_runs` is refused at
once (HTTP 503 + Retry-After, or the tool error "busy, retry in N s") while the admitted calls
complete; a per-client cap on background runs; the provider-call cap; the bounded queue."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import httpx
import pytest

from reasonkit.errors import Busy
from reasonkit.observability.metrics import Metrics
from reasonkit.server.capacity.run_slots import RunSlots, default_max_runs
from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.security import SecurityPolicy
from tests.server.conftest import make_settings, routed
from tests.server.helpers import MCP_HEADERS, answer, call, metric, poll
from tests.server.procs import HttpServer

pytestmark = pytest.mark.anyio

CAP = 4
BURST = 12


def add_server_keys(env: dict[str, str], lines: str) -> None:
    """Append keys to the `[server]` table (the last one) of the test config file."""
    cfg = Path(env["REASONKIT_CONFIG"])
    assert cfg.read_text().rstrip().splitlines()[-2] == "[server]"
    cfg.write_text(cfg.read_text() + lines + "\n")


def _busy(resp: httpx.Response) -> bool:
    """An immediate refusal: HTTP 503 with Retry-After, or the busy tool error."""
    if resp.status_code == 503:
        assert int(resp.headers["retry-after"]) >= 1
        return True
    assert resp.status_code == 200, resp.text[:300]
    result = answer(resp)["result"]
    if result.get("isError"):
        text = result["content"][0]["text"]
        assert "busy, retry in" in text, text
        return True
    assert result["structuredContent"]["status"] == "complete", result
    return False


async def test_a_burst_beyond_capacity_is_refused_before_any_admitted_call_ends(
    server_env, fake_llm, tmp_path
):
    fake_llm.default = routed({"JOIN": (None, 2.0)})  # admitted runs hold their slot for 2 s
    add_server_keys(server_env, f"max_concurrent_runs = {CAP}\nadmission_queue = 0")
    srv = HttpServer({**server_env, "LOG_LEVEL": "info"})
    order: list[bool] = []  # True: refused, False: completed, in the order the answers came
    try:
        limits = httpx.Limits(max_connections=BURST)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:

            async def one(i: int) -> None:
                r = await http.post(
                    f"{srv.url}/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": f"q{i}"})
                )
                order.append(_busy(r))

            async with anyio.create_task_group() as tg:
                for i in range(BURST):
                    tg.start_soon(one, i)
            body = (await http.get(f"{srv.url}/metrics")).text
    finally:
        assert srv.stop() == 0, srv.log()[-2000:]
    assert order.count(False) == CAP, order
    assert order.count(True) == BURST - CAP, order
    # every refusal was answered before the first admitted call finished: nobody waited for a slot
    assert order[: BURST - CAP] == [True] * (BURST - CAP), order
    assert metric(body, 'reasonkit_admission_total{outcome="admitted",reason=""}') == CAP
    assert metric(body, 'reasonkit_admission_total{outcome="rejected",reason="capacity"}') == BURST - CAP


async def test_background_runs_are_capped_per_client(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({"JOIN": (None, 30.0)})  # the background runs stay running
    s = make_settings(fake_llm, tmp_path / "data")
    s.server.max_background_runs_per_client = 2
    core = make_server(settings=s)
    core.security = SecurityPolicy.from_settings(s, "127.0.0.1", {})
    app = build_http_app(core, "127.0.0.1")

    def start(i: int) -> dict:
        return call("tiny", {"query": f"q{i}", "background": True}, id=i)

    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        clients = []
        for ip in ("127.0.0.1", "127.0.0.2"):
            transport = httpx.ASGITransport(app=app, client=(ip, 50000))
            http = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9100", timeout=30)
            clients.append(await stack.enter_async_context(http))
        a, b = clients
        results = [
            answer(await a.post("/mcp", headers=MCP_HEADERS, json=start(i)))["result"] for i in range(3)
        ]
        other = answer(await b.post("/mcp", headers=MCP_HEADERS, json=start(9)))["result"]
        assert [r["structuredContent"]["status"] for r in results[:2]] == ["running", "running"]
        assert results[2]["isError"], results[2]
        assert "busy, retry in" in results[2]["content"][0]["text"]
        assert "max_background_runs_per_client" in results[2]["content"][0]["text"]
        assert not other.get("isError") and other["structuredContent"]["status"] == "running"
        body, _ = core.metrics.render()
        rejected = 'reasonkit_admission_total{outcome="rejected",reason="background_per_client"}'
        assert metric(body.decode(), rejected) == 1


async def test_provider_calls_in_flight_are_capped(make_server, fake_llm, tmp_path):
    items = [f"item {i}" for i in range(8)]
    fake_llm.default = routed({"LIST": {"items": items}, "EACH": (None, 0.2)})
    s = make_settings(fake_llm, tmp_path / "data")
    s.server.max_inflight_provider_calls = 2
    core = make_server(settings=s)
    core.security = SecurityPolicy.from_settings(s, "127.0.0.1", {})
    app = build_http_app(core, "127.0.0.1")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:9100", timeout=60
        ) as http:
            statuses: list[str] = []

            async def one(i: int) -> None:
                r = await http.post("/mcp", headers=MCP_HEADERS, json=call("fan", {"query": f"q{i}"}, id=i))
                statuses.append(answer(r)["result"]["structuredContent"]["status"])

            async with anyio.create_task_group() as tg:
                for i in range(2):
                    tg.start_soon(one, i)
    assert statuses == ["complete", "complete"]
    assert len(fake_llm.requests) >= 2 * (len(items) + 2)
    assert fake_llm.max_concurrent == 2


# ----------------------------------------------------------------------------- the gate itself
def _gate(make_settings_fn, fake_llm, tmp_path, **server) -> tuple[RunSlots, Metrics]:
    s = make_settings_fn(fake_llm, tmp_path / "data")
    for k, v in server.items():
        setattr(s.server, k, v)
    metrics = Metrics()
    return RunSlots(lambda: s, metrics), metrics


async def test_the_queue_waits_for_a_slot_and_refuses_when_full_or_too_slow(fake_llm, tmp_path):
    gate, metrics = _gate(
        make_settings,
        fake_llm,
        tmp_path,
        max_concurrent_runs=1,
        admission_queue=1,
        admission_queue_timeout_secs=30,
    )
    first = await gate.admit("a", background=False, deadline=50)
    got: list[object] = []

    async def waiter() -> None:
        got.append(await gate.admit("b", background=False, deadline=50))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await poll(lambda: gate.waiters)
        assert gate.full()
        with pytest.raises(Busy) as full:  # the queue (1) is taken: refused at once
            await gate.admit("c", background=False, deadline=50)
        assert full.value.reason == "capacity" and "busy, retry in" in str(full.value)
        first.release()  # the waiter gets the slot
    assert len(got) == 1 and gate.running == 1
    got[0].release()  # type: ignore[attr-defined]
    assert gate.running == 0
    # a call never waits more than a quarter of its deadline
    held = await gate.admit("a", background=False, deadline=50)
    with pytest.raises(Busy) as slow:
        await gate.admit("d", background=False, deadline=0.2)
    assert slow.value.reason == "queue_timeout"
    held.release()
    gate.draining = True
    with pytest.raises(Busy) as draining:
        await gate.admit("e", background=False, deadline=50)
    assert draining.value.reason == "draining"
    text = metrics.render()[0].decode()
    assert metric(text, 'reasonkit_admission_total{outcome="queued",reason=""}') == 1
    assert metric(text, 'reasonkit_admission_total{outcome="rejected",reason="queue_timeout"}') == 1


def test_the_default_cap_comes_from_the_cpu_count():
    assert default_max_runs(1) == 16
    assert default_max_runs(4) == 64
    assert default_max_runs(64) == 256
