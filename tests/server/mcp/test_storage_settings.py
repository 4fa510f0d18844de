"""`rk serve-mcp` honours every `[storage]` setting (it did not: a server with save_runs = false
stored every run, and retention_days / max_runs were only applied by `rk think`)."""

from __future__ import annotations

import time

import anyio
import pytest
from mcp import Client

from reasonkit.store import SqliteRunStore
from tests.fakes.fake_llm import schema_filler
from tests.server.conftest import make_settings
from tests.server.helpers import block_text

pytestmark = pytest.mark.anyio


async def test_save_runs_false_stores_nothing(make_server, fake_llm, tmp_path):
    fake_llm.default = schema_filler
    settings = make_settings(fake_llm, tmp_path / "data")
    settings.storage.save_runs = False
    core = make_server(settings=settings)
    async with Client(core.server) as client:
        result = await client.call_tool("tiny", {"query": "q"})
    assert not result.is_error and result.structured_content["status"] == "complete"
    assert core.store is None
    assert not (tmp_path / "data" / "runs.db").exists()
    async with Client(core.server) as client:
        fetched = await client.call_tool("run_result", {"run_id": result.structured_content["run_id"]})
    assert fetched.is_error and "save_runs = false" in block_text(fetched.content[0])


async def test_max_runs_is_applied_while_serving(make_server, fake_llm, tmp_path):
    fake_llm.default = schema_filler
    settings = make_settings(fake_llm, tmp_path / "data")
    settings.storage.max_runs = 2
    settings.storage.maintenance_secs = 0.05  # a server prunes in its store's maintenance thread
    core = make_server(settings=settings)
    run_ids = []
    async with Client(core.server) as client:
        for _ in range(3):
            result = await client.call_tool("tiny", {"query": "q"})
            run_ids.append(result.structured_content["run_id"])
    store = core.store
    assert store is not None
    with anyio.fail_after(10):
        while {row["run_id"] for row in store.list()} != set(run_ids[1:]):  # noqa: ASYNC110
            await anyio.sleep(0.02)


async def test_retention_days_prunes_old_runs_at_start(make_server, fake_llm, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    from reasonkit.engine.result import RunResult

    with SqliteRunStore(data / "runs.db") as store:
        old = RunResult(run_id="old-run", kind="protocol", name="tiny", status="complete", complete=True)
        old.started_at = old.finished_at = time.time() - 10 * 86400
        store.start(old)
        store.save(old)
    settings = make_settings(fake_llm, data)
    settings.storage.retention_days = 1
    core = make_server(settings=settings)
    assert core.store is not None and core.store.get("old-run") is None
