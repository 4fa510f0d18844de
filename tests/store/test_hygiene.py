"""Run-store hygiene: private files, WAL truncation, retention while a server runs, write failures
counted in metrics and shown by /health (with rate-limited warnings), and a failed final save that is
kept and retried instead of leaving the run `running`."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from reasonkit.config import Settings
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.health import HealthChecker
from reasonkit.server.mcp.app import ReasonKitServer, build_server
from reasonkit.store import SqliteRunStore, StoreBackend

from ._helpers import make_result, must

try:
    from tests.fakes.fake_llm import FakeLLM, schema_filler
    from tests.server.conftest import PROFILES, TINY, make_settings
    from tests.server.helpers import MCP_HEADERS, answer, asgi_client, call, metric
except ImportError:  # pragma: no cover - plain `pytest` puts tests/ itself on sys.path
    from fakes.fake_llm import FakeLLM, schema_filler  # type: ignore[no-redef]
    from server.conftest import PROFILES, TINY, make_settings  # type: ignore[no-redef]
    from server.helpers import MCP_HEADERS, answer, asgi_client, call, metric  # type: ignore[no-redef]

POSIX = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _wait(condition: Any, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ------------------------------------------------------------------ defaults
def test_retention_is_on_by_default() -> None:
    storage = Settings().storage
    assert storage.retention_days == 30 and storage.max_runs == 10000
    assert 0 < storage.maintenance_secs <= 3600


# ------------------------------------------------------------------ files
@POSIX
def test_data_folder_is_0700_and_database_files_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: without care, SQLite's files would be 0644
    try:
        data = tmp_path / "data"
        with SqliteRunStore(data / "runs.db") as store:
            store.save(make_result("r1", n_steps=2, entries=1))
            assert _mode(data) == 0o700
            for name in ("runs.db", "runs.db-wal", "runs.db-shm"):
                assert (data / name).exists(), name
                assert _mode(data / name) == 0o600, name
        # files and folder an older version left readable by others are tightened on open
        (data / "runs.db").chmod(0o644)
        data.chmod(0o755)
        with SqliteRunStore(data / "runs.db") as store:
            assert store.count() == 1
        assert _mode(data) == 0o700 and _mode(data / "runs.db") == 0o600
    finally:
        os.umask(old)


# ------------------------------------------------------------------ WAL
def test_checkpoint_truncates_the_wal(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    wal = Path(f"{db}-wal")
    with SqliteRunStore(db, busy_timeout_ms=200) as store:  # TRUNCATE waits this long for the reader
        reader = sqlite3.connect(db)
        try:
            # an open read transaction keeps SQLite's own checkpoints from resetting the WAL: it grows
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM runs").fetchone()
            for i in range(20):
                store.save(make_result(f"w{i}", n_steps=20, entries=2))
            grown = wal.stat().st_size
            assert grown > 1_000_000
            assert store.checkpoint() is False  # the reader still needs the old pages
        finally:
            reader.close()
        store.maintain(None, None)  # a full maintenance pass checkpoints with TRUNCATE
        assert wal.stat().st_size == 0
        assert store.checkpoint() is True
        assert store.count() == 20 and store.integrity_check() == "ok"


# ------------------------------------------------------------------ with a server
def _server(fake: FakeLLM, tmp_path: Path, store: StoreBackend | None = None, **env: str) -> ReasonKitServer:
    protos = tmp_path / "protocols"
    protos.mkdir(exist_ok=True)
    (protos / "tiny.toml").write_text(TINY)
    (protos / "profiles.toml").write_text(PROFILES.split("[profiles.pair]")[0] + _SOLO)
    settings = make_settings(fake, tmp_path / "data", **env)
    settings.storage.maintenance_secs = 0.05
    registry = load_registry([protos], include_builtin=False)
    assert not registry.problems, registry.problems
    shared = store.health.metrics if store is not None and store.health is not None else None
    metrics = shared if isinstance(shared, Metrics) else Metrics()  # the store's own, when it has one
    return build_server(settings, registry, store=store, metrics=metrics)


_SOLO = """
[profiles.solo]
description = "tiny only"
min_confidence = 0.5
[[profiles.solo.chain]]
protocol = "tiny"
"""


def _old_runs(db: Path | str, n: int, days_ago: float) -> None:
    with SqliteRunStore(db) as other:  # another process's view of the same file
        for i in range(n):
            other.save(
                make_result(
                    f"old{days_ago}-{i}", n_steps=2, entries=1, started_at=time.time() - days_ago * 86400
                )
            )


def test_retention_is_applied_while_serving(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """A server that makes no calls still deletes runs as they age past `retention_days`, and keeps at
    most `max_runs`: not only at start-up."""
    core = _server(fake_llm, tmp_path)
    try:
        store = must(core.store)
        core.settings.storage.retention_days = 2
        core.settings.storage.max_runs = 6  # a reload changes the policy: the next pass uses it
        db = store.path
        _old_runs(db, 4, days_ago=3)  # past retention
        _old_runs(db, 8, days_ago=0.5)  # within it, but more than max_runs
        with SqliteRunStore(db) as view:
            _wait(lambda: view.count() == 6)
            ids = {r["run_id"] for r in view.list(limit=0)}
        assert all(i.startswith("old0.5-") for i in ids)
    finally:
        core.service.close()


@pytest.mark.anyio
async def test_write_failures_are_counted_reported_and_the_final_state_retried(
    fake_llm: FakeLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds the write lock (as a full disk would, every write fails): the call is
    still answered; the failures are counted in /metrics, /health says degraded, the warning is logged
    once; the run is never `running` for this live process (its final state is served from memory)
    and lands in the file once the store works again; /health is healthy again."""
    fake_llm.default = schema_filler
    metrics = Metrics()
    store = SqliteRunStore(tmp_path / "data" / "runs.db", busy_timeout_ms=20, metrics=metrics)
    store.write_attempts = 1
    core = _server(fake_llm, tmp_path, store=store)
    caplog.set_level(logging.WARNING, logger="reasonkit.store")
    blocker = sqlite3.connect(store.path, isolation_level=None)
    try:
        app = build_http_app(core, "127.0.0.1")
        async with asgi_client(app) as http:
            fresh = HealthChecker(core.settings, "1", store=lambda: core.store, cache_secs=0)
            assert (await fresh.check())["checks"]["run_store"]["status"] == "healthy"
            blocker.execute("BEGIN IMMEDIATE")  # hold the write lock
            run_ids = []
            for i in range(3):
                resp = await http.post(
                    "/mcp", json=call("tiny", {"query": f"q{i}"}, id=i), headers=MCP_HEADERS
                )
                result = answer(resp)["result"]
                assert not result.get("isError"), result
                run_ids.append(result["structuredContent"]["run_id"])
            body = (await http.get("/metrics")).text
            failed = sum(
                metric(body, f'reasonkit_store_write_errors_total{{operation="{op}"}}')
                for op in ("start", "save")
            )
            assert failed >= 3
            health = (await http.get("/health")).json()
            check = health["checks"]["run_store"]
            assert health["status"] == "degraded" and check["status"] == "degraded"
            assert check["pending_final_saves"] == 3 and "locked" in check["detail"]
            # never `running` while this process lives: the final state is kept in memory
            for run_id in run_ids:
                assert must(store.get(run_id))["status"] == "complete"
            warnings = [r for r in caplog.records if "failed" in r.getMessage()]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]

            blocker.execute("ROLLBACK")  # the store works again: maintenance retries the final saves
            await anyio.to_thread.run_sync(_wait, lambda: store.pending_finals() == 0)
            with SqliteRunStore(store.path) as view:
                assert {must(view.summary(r))["status"] for r in run_ids} == {"complete"}
            health = await fresh.check()
            assert health["checks"]["run_store"]["status"] == "healthy", health
    finally:
        blocker.close()
        core.service.close()
