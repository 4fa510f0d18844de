"""Two `rk serve-mcp --port` replicas on one machine, sharing one PostgreSQL run store and one Redis,
behave as one service: a background run started on one is fetched (with its progress) from the other;
`kill -9` of the replica running it and the other marks it interrupted once its lease expires; a
per-client rate limit of N holds across both."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.programs import require_program, skip_or_fail
from tests.server.conftest import routed
from tests.server.helpers import MCP_HEADERS, answer, call, rpc
from tests.server.procs import HttpServer, free_port
from tests.store.postgres_server import MISSING, PostgresServer, find_postgres_bin, running_postgres

LEASE_SECS = 3


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if find_postgres_bin() is None:
        skip_or_fail(MISSING)
    with running_postgres() as server:
        yield server


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    schema = postgres.new_schema()
    yield postgres.schema_url(schema)
    postgres.drop_schema(schema)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = require_program("redis-server", "apt-get install -y redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1)
        _until(lambda: _pings(client), 10)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _until(condition: Callable[[], object], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _env(tmp_path: Path, proto_dir: Path, fake_llm: Any, database: str, name: str, extra: str = "") -> dict:
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
lease_secs = {LEASE_SECS}
{extra}
"""
    )
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root / "home"),
        "REASONKIT_CONFIG": str(cfg),
        "REASONKIT_DATA_DIR": str(root / "data"),
        "REASONKIT_DATABASE_URL": database,
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "LLM_DEFAULT_PROVIDER": "openai",
        "PYTHONUNBUFFERED": "1",
    }


def _tool(server: HttpServer, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(f"{server.url}/mcp", headers=MCP_HEADERS, json=call(name, arguments), timeout=30)
    assert resp.status_code == 200, resp.text[:300]
    return answer(resp)["result"]


def _status(server: HttpServer, run_id: str) -> dict[str, Any]:
    return _tool(server, "run_result", {"run_id": run_id})["structuredContent"]


def test_two_replicas_share_runs_and_mark_a_dead_ones_runs_interrupted(
    tmp_path: Path, proto_dir: Path, fake_llm: Any, database: str
) -> None:
    # tiny's steps answer at once; fan's first step waits for a "slow" query: the run is mid-way
    fake_llm.default = routed({"LIST <query>slow": (None, 120.0)})
    a = HttpServer(_env(tmp_path, proto_dir, fake_llm, database, "a"))
    b = HttpServer(_env(tmp_path, proto_dir, fake_llm, database, "b"))
    try:
        # a background run started on A is fetched from B, finished
        started = _tool(a, "think", {"query": "fast", "background": "true"})["structuredContent"]
        run_id = started["run_id"]
        done = _until(lambda: (s := _status(b, run_id))["status"] != "running" and s, 30)
        assert done["status"] == "complete" and done["run_id"] == run_id

        # a run in progress on A: B sees it running, with the steps done so far (from the store)
        slow = _tool(a, "think", {"query": "slow", "background": "true"})["structuredContent"]["run_id"]
        from reasonkit.store.postgres import PostgresRunStore

        with PostgresRunStore(database, migrate=False) as store:

            def progressed() -> bool:
                trace = store.get(slow) or {}
                steps = [s for e in trace.get("entries", []) for s in e.get("steps", [])]
                return trace.get("status") == "running" and any(s.get("status") == "ok" for s in steps)

            _until(progressed, 30)
            running = _tool(b, "run_result", {"run_id": slow})
            assert running["structuredContent"]["status"] == "running"
            assert "another server process" in running["content"][0]["text"]
            owner = store.lease(slow)
            assert owner is not None and f":{a.proc.pid}:" in owner[0]  # A holds its lease

            # kill -9 A mid-run: B marks the run interrupted once the lease has expired
            a.proc.kill()
            a.proc.wait(timeout=10)
            killed_at = time.monotonic()
            final = _until(lambda: (s := _status(b, slow))["status"] != "running" and s, LEASE_SECS * 5)
            assert final["status"] == "interrupted"
            assert time.monotonic() - killed_at < LEASE_SECS * 5
            trace = store.get(slow) or {}
            assert "stopped renewing its lease" in trace["stop_reason"]
            # `rk runs` against the same database (the CLI of any machine) agrees
            listed = subprocess.run(
                [*_rk(), "runs", "list", "--status", "interrupted"],
                env=_env(tmp_path, proto_dir, fake_llm, database, "cli"),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert listed.returncode == 0, listed.stderr
            assert slow[:8] in listed.stdout
    finally:
        for server in (a, b):
            if server.proc.poll() is None:
                server.stop()
            else:
                server.stderr.close()


def test_a_per_client_rate_limit_holds_across_replicas(
    tmp_path: Path, proto_dir: Path, fake_llm: Any, database: str, redis_url: str
) -> None:
    limit = 5
    extra = f"[security]\nrate_limit_per_minute = {limit}\n"
    a_env = _env(tmp_path, proto_dir, fake_llm, database, "a", extra) | {"REDIS_URL": redis_url}
    b_env = _env(tmp_path, proto_dir, fake_llm, database, "b", extra) | {"REDIS_URL": redis_url}
    a, b = HttpServer(a_env), HttpServer(b_env)
    try:
        codes = []
        for i in range(2 * limit):
            server = (a, b)[i % 2]
            resp = httpx.post(
                f"{server.url}/mcp", headers=MCP_HEADERS, json=rpc("tools/list", id=i), timeout=10
            )
            codes.append(resp.status_code)
            if resp.status_code == 429:
                assert int(resp.headers["retry-after"]) >= 1
        # N in total pass, wherever they land; each replica alone would have let 2N through
        assert codes == [200] * limit + [429] * limit, codes
    finally:
        a.stop()
        b.stop()


def _rk() -> list[str]:
    from tests.server.procs import rk_command

    return rk_command()
