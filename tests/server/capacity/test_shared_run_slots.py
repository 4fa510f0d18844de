"""RunSlots counts shared through a real redis-server (issue 15): two gates (two replicas) share the
per-client background cap and the cluster-wide run cap; a killed holder's slot expires after its
lease while a live holder's is renewed; Redis down falls back to the process's own counts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from loguru import logger

from reasonkit.config import load_settings
from reasonkit.errors import Busy, SlotsTaken
from reasonkit.observability.metrics import Metrics
from reasonkit.server.capacity.run_slots import RunSlots
from reasonkit.server.capacity.shared_run_slots import SharedRunSlots, shared_run_slots
from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.security import SecurityPolicy
from tests.server.conftest import make_settings, routed
from tests.server.helpers import MCP_HEADERS, answer, call, metric
from tests.server.lifecycle.test_replicas import redis_url  # noqa: F401 - the fixture
from tests.server.procs import free_port

pytestmark = pytest.mark.anyio

HOLDER = """
import sys, anyio
from reasonkit.server.capacity.shared_run_slots import SharedRunSlots
async def main():
    shared = SharedRunSlots(sys.argv[1], lease_secs=3.0)
    await shared.acquire("token:ci", background=True, background_cap=1, cluster_cap=None)
    print("held", flush=True)
    await anyio.sleep(600)
anyio.run(main)
"""


def _gate(url: str, **server: Any) -> tuple[RunSlots, Metrics]:
    s = load_settings(environ={"REDIS_URL": url})
    for k, v in server.items():
        setattr(s.server, k, v)
    metrics = Metrics()
    return RunSlots(lambda: s, metrics), metrics


async def _until(condition: Callable[[], Any], within: float = 10) -> Any:
    import anyio

    deadline = time.monotonic() + within
    while not (value := await condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        await anyio.sleep(0.05)
    return value


async def test_the_background_cap_per_client_holds_across_two_gates(redis_url: str) -> None:  # noqa: F811
    a, _ = _gate(redis_url, max_background_runs_per_client=2)
    b, b_metrics = _gate(redis_url, max_background_runs_per_client=2)
    assert a.try_admit("token:x", background=True) is None  # the middleware leaves it to `admit`
    held = [await a.admit("token:x", background=True, deadline=60) for _ in range(2)]
    with pytest.raises(Busy) as refused:  # gate b has none of its own, but the client has 2 on a
        await b.admit("token:x", background=True, deadline=60)
    assert refused.value.reason == "background_per_client" and "all replicas" in str(refused.value)
    assert b.running == 0 and b.background == {}  # the local slot was given back
    other = await b.admit("token:y", background=True, deadline=60)  # another client has its own
    foreground = await b.admit("token:x", background=False, deadline=60)  # not a background run
    held[0].release()  # a run on a ends: its slot leaves Redis (the keeper thread, at once)

    async def admitted() -> Any:
        try:
            return await b.admit("token:x", background=True, deadline=60)
        except Busy:
            return None

    moved = await _until(admitted)
    text = b_metrics.render()[0].decode()
    assert metric(text, 'reasonkit_admission_total{outcome="rejected",reason="background_per_client"}') >= 1
    for ticket in (held[1], other, foreground, moved):
        ticket.release()
    shared = shared_run_slots(a.settings())
    assert shared is not None and shared.failures == 0
    await _until(lambda: _zero(shared, "token:x"))


async def test_two_http_servers_refuse_a_clients_extra_background_run(
    make_server,
    fake_llm,
    tmp_path,
    redis_url: str,  # noqa: F811
) -> None:
    """Through the HTTP middleware and the tool handler of two servers (two replicas) on one Redis:
    with a cap of 1, the client's second background run is refused by the other server."""
    from contextlib import AsyncExitStack

    fake_llm.default = routed({"JOIN": (None, 30.0)})  # the background runs stay running
    clients = []
    async with AsyncExitStack() as stack:
        for name in ("a", "b"):
            s = make_settings(fake_llm, tmp_path / name, REDIS_URL=redis_url)
            s.server.max_background_runs_per_client = 1
            core = make_server(settings=s)
            core.security = SecurityPolicy.from_settings(s, "127.0.0.1", {})
            app = build_http_app(core, "127.0.0.1")
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=("127.0.0.7", 50000))
            http = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9100", timeout=30)
            clients.append(await stack.enter_async_context(http))
        results = []
        for i, http in enumerate(clients):
            args = {"query": f"q{i}", "background": True}
            results.append(
                answer(await http.post("/mcp", headers=MCP_HEADERS, json=call("tiny", args)))["result"]
            )
    assert results[0]["structuredContent"]["status"] == "running", results[0]
    assert results[1]["isError"], results[1]
    assert "on all replicas" in results[1]["content"][0]["text"]


async def _zero(shared: SharedRunSlots, client: str) -> bool:
    return shared.redis.zcard(shared.background_key(client)) == 0


async def test_a_cluster_cap_counts_the_runs_of_all_gates(redis_url: str) -> None:  # noqa: F811
    a, _ = _gate(redis_url, max_concurrent_runs=8, max_concurrent_runs_cluster=3)
    b, _ = _gate(redis_url, max_concurrent_runs=8, max_concurrent_runs_cluster=3)
    held = [await a.admit(f"ip:10.0.0.{i}", background=False, deadline=60) for i in range(2)]
    held.append(await b.admit("ip:10.0.0.9", background=False, deadline=60))
    with pytest.raises(Busy) as refused:  # each gate has room for 8; all replicas together for 3
        await b.admit("ip:10.0.0.9", background=False, deadline=60)
    assert refused.value.reason == "cluster_capacity"
    assert "max_concurrent_runs_cluster" in str(refused.value)
    for ticket in held:
        ticket.release()

    async def admitted() -> Any:
        try:
            return await b.admit("ip:10.0.0.9", background=False, deadline=60)
        except Busy:
            return None

    (await _until(admitted)).release()


def _holder(url: str) -> subprocess.Popen[bytes]:
    """Another process holding client `token:ci`'s one background slot (3 s lease, renewed every 1 s:
    a busy CI machine may stall it a second or two without losing the slot)."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, env=env)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
    return holder


async def test_a_killed_holders_slot_expires_after_its_lease(redis_url: str) -> None:  # noqa: F811
    holder = _holder(redis_url)
    try:
        live = SharedRunSlots(redis_url, lease_secs=3.0)
        # a live holder renews its lease: after more than two leases the slot is still taken
        import anyio

        await anyio.sleep(7.0)
        with pytest.raises(SlotsTaken):
            await live.acquire("token:ci", background=True, background_cap=1, cluster_cap=None)
    finally:
        holder.kill()  # kill -9: nothing released
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()

    async def free() -> Any:
        try:
            return await live.acquire("token:ci", background=True, background_cap=1, cluster_cap=None)
        except SlotsTaken:
            return None

    slot = await _until(free)  # within about one lease of the kill
    slot.release()
    live.close()


async def test_redis_down_falls_back_to_per_process_counts() -> None:
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING", format="{message}")
    try:
        gate, _ = _gate(f"redis://127.0.0.1:{free_port()}/0", max_background_runs_per_client=2)
        held = [await gate.admit("token:z", background=True, deadline=60) for _ in range(2)]
        with pytest.raises(Busy) as refused:  # the process's own count still holds
            await gate.admit("token:z", background=True, deadline=60)
    finally:
        logger.remove(sink)
    assert refused.value.reason == "background_per_client"
    assert all(t.slot is None for t in held)  # admitted without a slot in Redis
    shared = shared_run_slots(gate.settings())
    assert shared is not None and shared.failures == 1  # tried once, then not before retry_secs
    shared_warnings = [w for w in warnings if "shared admission" in w]
    assert len(shared_warnings) == 1, warnings
    assert "this process's counts only" in shared_warnings[0]
    for ticket in held:
        ticket.release()
    assert gate.running == 0


def test_picked_only_when_redis_is_configured() -> None:
    assert shared_run_slots(load_settings(environ={})) is None
    chosen = shared_run_slots(load_settings(environ={"REDIS_URL": "redis://:secret@127.0.0.1:1/0"}))
    assert isinstance(chosen, SharedRunSlots) and chosen.where == "redis://127.0.0.1:1"
    assert "secret" not in chosen.background_key("token:secret")
