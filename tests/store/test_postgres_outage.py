"""A PostgreSQL outage loses no finished run and is not silent (issue 23, hole 4): with the database
stopped a call is still answered quickly, its final save is kept and retried, /health says the run
store is degraded and reasonkit_store_write_errors_total counts the failures; once the database is
back the run lands in it and /health is healthy again. A real PostgreSQL server of its own is stopped
and started within the test."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from reasonkit.observability.metrics import Metrics
from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.health import HealthChecker

from ._helpers import must
from .postgres_server import find_postgres_bin, running_postgres
from .test_hygiene import _server, _wait

try:
    from tests.fakes.fake_llm import FakeLLM, schema_filler
    from tests.server.helpers import MCP_HEADERS, answer, asgi_client, call, metric
except ImportError:  # pragma: no cover - plain `pytest` puts tests/ itself on sys.path
    from fakes.fake_llm import FakeLLM, schema_filler  # type: ignore[no-redef]
    from server.helpers import MCP_HEADERS, answer, asgi_client, call, metric  # type: ignore[no-redef]

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(find_postgres_bin() is None, reason="no PostgreSQL binaries"),
]


async def test_an_outage_is_reported_and_the_final_saves_land_afterwards(fake_llm: FakeLLM, tmp_path: Path):
    from reasonkit.store.postgres import PostgresRunStore

    fake_llm.default = schema_filler
    with running_postgres() as pg:
        metrics = Metrics()
        store = PostgresRunStore(pg.url, metrics=metrics)
        core = _server(fake_llm, tmp_path, store=store)
        fresh = HealthChecker(core.settings, "1", store=lambda: core.store, cache_secs=0)
        try:
            async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
                ok = answer(await http.post("/mcp", json=call("tiny", {"query": "q"}), headers=MCP_HEADERS))
                assert must(store.get(ok["result"]["structuredContent"]["run_id"]))["status"] == "complete"
                assert (await fresh.check())["checks"]["run_store"]["status"] == "healthy"

                pg.stop()
                run_ids = []
                for i in range(2):
                    t0 = time.monotonic()
                    resp = await http.post(
                        "/mcp", json=call("tiny", {"query": f"q{i}"}, id=i), headers=MCP_HEADERS
                    )
                    took = time.monotonic() - t0
                    result = answer(resp)["result"]
                    assert not result.get("isError"), result
                    run_ids.append(result["structuredContent"]["run_id"])
                    assert took < 5, f"a call took {took:.1f}s with the database down"
                health = await fresh.check()
                check = health["checks"]["run_store"]
                assert health["status"] == "degraded" and check["status"] == "degraded", health
                assert check["pending_final_saves"] == 2 and "postgresql" in check["path"]
                body = (await http.get("/metrics")).text
                failed = sum(
                    metric(body, f'reasonkit_store_write_errors_total{{operation="{op}"}}')
                    for op in ("start", "save")
                )
                assert failed >= 2, body[-2000:]
                for run_id in run_ids:  # this live process answers for its runs from memory
                    assert must(store.get(run_id))["status"] == "complete"

                await anyio.to_thread.run_sync(pg.start)
                await anyio.to_thread.run_sync(lambda: _wait(lambda: store.pending_finals() == 0, 30))
                with PostgresRunStore(pg.url, migrate=False) as view:
                    assert {must(view.summary(r))["status"] for r in run_ids} == {"complete"}
                health = await fresh.check()
                assert health["checks"]["run_store"]["status"] == "healthy", health
        finally:
            core.service.close()
