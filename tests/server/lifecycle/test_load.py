"""Load with injected provider faults (correctness only, no timing asserts): 200 concurrent
tools/call over HTTP against `rk serve-mcp --port`, a fake LLM with a little latency where every
10th request fails (500, 503 or 429 without Retry-After) and a few queries meet a provider that
always fails. Every call must be answered (a result or a clear tool error), no unhandled exception
may reach the log, and every run must be in the store. (Timings: bench/, docs/benchmarks.md.)"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import anyio
import httpx
import pytest

from reasonkit.store import SqliteRunStore
from tests.fakes.fake_llm import Reply
from tests.server.conftest import first_user_text, routed
from tests.server.helpers import MCP_HEADERS, answer, call, metric
from tests.server.procs import HttpServer

pytestmark = pytest.mark.anyio

CALLS = 200
DOOMED = {i for i in range(CALLS) if i % 25 == 7}  # 8 calls whose provider always fails
FAULTS = (500, 503, 429)


async def test_200_concurrent_calls_with_10_percent_provider_faults(
    server_env, fake_llm, proto_dir, tmp_path
):
    counter = itertools.count(1)
    ok_reply = routed({}, delay=0.02)
    faults = {"injected": 0}

    def handler(req):
        n = next(counter)
        if "doomed" in first_user_text(req):
            return Reply(status=500, text="injected: this provider is broken for this query", delay=0.01)
        if n % 10 == 0:
            faults["injected"] += 1
            return Reply(status=FAULTS[(n // 10) % 3], text="injected fault", delay=0.01)
        return ok_reply(req)

    fake_llm.default = handler
    cfg = tmp_path / "load.toml"
    cfg.write_text(
        f"""
[protocols]
dirs = [{json.dumps(str(proto_dir))}]
[engine]
default_profile = "solo"
[llm.providers.openai]
max_retries = 1
retry_base_delay_secs = 0.01
retry_max_delay_secs = 0.05
breaker_threshold = 0  # the breaker has its own fault tests; here the outcome must not depend on timing
[server]
shutdown_grace_secs = 5
tool_deadline_secs = 120
max_concurrent_runs = 200  # all admitted: this test is about provider faults (run slots: test_run_slots.py)
"""
    )
    env = {**server_env, "REASONKIT_CONFIG": str(cfg), "LOG_LEVEL": "info"}
    srv = HttpServer(env)
    answers: dict[int, dict] = {}
    try:
        limits = httpx.Limits(max_connections=CALLS, max_keepalive_connections=CALLS)
        async with httpx.AsyncClient(timeout=120, limits=limits) as http:

            async def one(i: int) -> None:
                query = f"doomed question {i}" if i in DOOMED else f"question {i}"
                r = await http.post(
                    f"{srv.url}/mcp", headers=MCP_HEADERS, json=call("tiny", {"query": query}, id=i)
                )
                assert r.status_code == 200, (i, r.status_code, r.text[:300])
                answers[i] = answer(r)

            async with anyio.create_task_group() as tg:
                for i in range(CALLS):
                    tg.start_soon(one, i)
            metrics_body = (await http.get(f"http://127.0.0.1:{srv.metrics_port}/metrics")).text
    finally:
        code = srv.stop()
    log = await anyio.Path(srv.stderr.name).read_text()
    assert code == 0, log[-3000:]

    # every call answered: a result, never a JSON-RPC error; failures are clear tool errors
    assert sorted(answers) == list(range(CALLS))
    assert all(a["id"] == i and "result" in a for i, a in answers.items()), [
        a for a in answers.values() if "result" not in a
    ][:3]
    results = {i: a["result"] for i, a in answers.items()}
    failed = {i for i, r in results.items() if r["isError"]}
    for i in failed:
        text = results[i]["content"][0]["text"]
        assert re.match(
            r"ReasonKit error: the protocol `tiny` failed: tiny\.(first|join): openai: HTTP (500|503|429): ",
            text,
        ), text[:300]
        assert "(gave up after 2 attempts)" in text, text[:300]
    assert DOOMED <= failed  # the broken provider's calls fail, with the error above
    assert len(failed) < CALLS // 4  # one retry absorbs most injected faults
    statuses = {r["structuredContent"]["run_id"]: r["structuredContent"]["status"] for r in results.values()}
    assert {statuses[results[i]["structuredContent"]["run_id"]] for i in failed} == {"failed"}
    assert set(statuses.values()) <= {"complete", "incomplete", "failed"}  # incomplete: a later step failed
    assert faults["injected"] >= 30

    # no unhandled exception anywhere
    for bad in ("Traceback", "run crashed", "Exception in ASGI application", "internal error"):
        assert bad not in log, bad

    # every run is in the store, finished
    run_ids = {r["structuredContent"]["run_id"] for r in results.values()}
    assert len(run_ids) == CALLS
    with SqliteRunStore(Path(env["REASONKIT_DATA_DIR"]) / "runs.db") as store:
        stored = {r["run_id"]: r["status"] for r in store.list(limit=0)}
        assert store.integrity_check() == "ok"
    assert stored == statuses  # every run stored, with the status its caller was told

    for status in ("complete", "incomplete", "failed"):
        n = sum(1 for s in statuses.values() if s == status)
        assert (
            metric(
                metrics_body, f'reasonkit_requests_total{{method="tiny",profile="tiny",status="{status}"}}'
            )
            == n
        )
    assert metric(metrics_body, 'reasonkit_provider_retries_total{provider="openai",type="server"}') > 0
