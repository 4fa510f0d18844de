"""Issue 24 point 1 across replicas: two `rk serve-mcp --port` processes sharing one run store (one
SQLite file on this machine, or one PostgreSQL database) answer for each other's tasks. A task
started on A is polled to completion on B; a long task started on A and cancelled on B stops on A
within a few seconds and is stored as cancelled; `run_result` with `cancel: true` on B does the same
for a legacy background run on A."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reasonkit.server.mcp.tasks import CANCEL_POLL_SECS, CANCEL_REASON, EXTENSION
from reasonkit.store import open_store
from tests.programs import skip_or_fail
from tests.server.conftest import routed
from tests.server.procs import HttpServer
from tests.store.postgres_server import MISSING, find_postgres_bin, running_postgres

MODERN = "2026-07-28"
#: How long a cancel made on B may take to stop the run on A: A's poll interval, plus the time to
#: finish and save the cancelled run.
CANCEL_WITHIN = CANCEL_POLL_SECS + 3.0


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The run store both replicas share: None (one SQLite file in a shared data dir) or a URL."""
    if request.param == "sqlite":
        yield None
        return
    if find_postgres_bin() is None:
        skip_or_fail(MISSING)
    with running_postgres() as server:
        schema = server.new_schema()
        yield server.schema_url(schema)
        server.drop_schema(schema)


def _env(tmp_path: Path, proto_dir: Path, fake_llm: Any, database: str | None, name: str) -> dict[str, str]:
    root = tmp_path / name
    (root / "home").mkdir(parents=True)
    cfg = root / "config.toml"
    cfg.write_text(
        f"""
[protocols]
dirs = [{json.dumps(str(proto_dir))}]
[engine]
default_profile = "pair"
[llm.providers.openai]
max_retries = 0
[server]
shutdown_grace_secs = 2
[storage]
lease_secs = 3
"""
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root / "home"),
        "REASONKIT_CONFIG": str(cfg),
        "REASONKIT_DATA_DIR": str(tmp_path / "shared-data" if database is None else root / "data"),
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "LLM_DEFAULT_PROVIDER": "openai",
        "PYTHONUNBUFFERED": "1",
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }
    if database is not None:
        env["REASONKIT_DATABASE_URL"] = database
    return env


def send(server: HttpServer, method: str, params: dict[str, Any], tasks: bool = True) -> dict[str, Any]:
    """One 2026-07-28 request; its result (asserting there is one)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION: {}}} if tasks else {},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": MODERN,
        "mcp-method": method,
        "mcp-name": str(params.get("name") or params.get("taskId") or ""),
    }
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    resp = httpx.post(f"{server.url}/mcp", json=message, headers=headers, timeout=30)
    body = resp.json()
    assert resp.status_code == 200 and "result" in body, resp.text[:500]
    result: dict[str, Any] = body["result"]
    return result


def _until(get: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], within: float) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = get()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"not done in {within} s: {value}"
        time.sleep(0.1)


def _stored(env: dict[str, str], run_id: str) -> dict[str, Any]:
    from reasonkit.config import load_settings

    with open_store(load_settings(environ=env)) as store:
        return store.get(run_id) or {}


def test_a_task_on_one_replica_is_polled_and_cancelled_on_another(
    tmp_path: Path, proto_dir: Path, fake_llm: Any, database: str | None
) -> None:
    # tiny's steps answer at once; fan's first step waits for a "slow" query: the run is mid-way
    fake_llm.default = routed({"LIST <query>slow": (None, 120.0)})
    a_env = _env(tmp_path, proto_dir, fake_llm, database, "a")
    a = HttpServer(a_env)
    b = HttpServer(_env(tmp_path, proto_dir, fake_llm, database, "b"))
    try:
        # a task started on A is polled to its result on B
        created = send(a, "tools/call", {"name": "think", "arguments": {"query": "fast", "background": True}})
        assert created["resultType"] == "task", created
        get_on_b = {"taskId": created["taskId"]}
        done = _until(lambda: send(b, "tasks/get", get_on_b), lambda t: t["status"] != "working", 30)
        assert done["status"] == "completed", done
        assert done["result"]["structuredContent"]["status"] == "complete"

        # a long task on A, cancelled on B: A stops it within a few seconds
        slow = send(a, "tools/call", {"name": "think", "arguments": {"query": "slow", "background": True}})
        run_id = slow["statusMessage"].rsplit(" ", 1)[-1]
        task_on_b = {"taskId": slow["taskId"]}
        _until(lambda: _stored(a_env, run_id), lambda t: t.get("status") == "running" and _some_step(t), 30)
        assert send(b, "tasks/get", task_on_b)["status"] == "working"
        assert send(b, "tasks/cancel", task_on_b).get("resultType") == "complete"
        asked = time.monotonic()
        final = _until(lambda: send(b, "tasks/get", task_on_b), lambda t: t["status"] != "working", 15)
        took = time.monotonic() - asked
        assert final["status"] == "cancelled" and final["statusMessage"] == CANCEL_REASON, final
        assert took < CANCEL_WITHIN, took
        stored = _stored(a_env, run_id)
        assert stored["status"] == "cancelled" and stored["stop_reason"] == CANCEL_REASON

        # the same cancel for a client without tasks: run_result on B stops A's background run
        legacy = send(
            a, "tools/call", {"name": "think", "arguments": {"query": "slow", "background": True}}, False
        )
        legacy_id = legacy["structuredContent"]["run_id"]
        _until(lambda: _stored(a_env, legacy_id), lambda t: _some_step(t), 30)
        send(
            b, "tools/call", {"name": "run_result", "arguments": {"run_id": legacy_id, "cancel": True}}, False
        )
        _until(lambda: _stored(a_env, legacy_id), lambda t: t.get("status") == "cancelled", CANCEL_WITHIN)
        assert "run cancelled on request from another replica" in a.log()
    finally:
        a.stop()
        b.stop()


def _some_step(trace: dict[str, Any]) -> bool:
    steps = [s for e in trace.get("entries", []) for s in e.get("steps", [])]
    return any(s.get("status") == "ok" for s in steps)
