"""The store suite on both back ends: the back-end-neutral tests of test_store_sqlite.py run again
against PostgreSQL, and the interface is checked on both."""

from __future__ import annotations

import time
from typing import Any

import pytest

from reasonkit.config import load_settings
from reasonkit.errors import StoreError
from reasonkit.store.base import StoreBackend
from reasonkit.store.factory import database_url, open_store, store_location

from . import test_store_sqlite as sqlite_suite
from ._helpers import make_result, must

#: Tests of test_store_sqlite.py that use only the store interface (they run there on SQLite).
NEUTRAL = [
    "test_round_trip_full_trace",
    "test_start_then_saves_update_in_place",
    "test_list_newest_first_and_filters",
    "test_resolve_prefix",
    "test_mark_interrupted_leaves_live_owners_alone",
    "test_start_trace_and_save_trace_take_a_trace",
    "test_prune_if_due_prunes_at_most_once_per_interval",
    "test_prune_if_due_after_the_interval_and_when_nothing_is_configured",
]


@pytest.mark.parametrize("name", NEUTRAL)
def test_sqlite_suite_on_postgres(name: str, pg_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    test = getattr(sqlite_suite, name)
    if "monkeypatch" in test.__code__.co_varnames[: test.__code__.co_argcount]:
        test(pg_store, monkeypatch)
    else:
        test(pg_store)


def test_both_back_ends_implement_the_interface(any_store: Any) -> None:
    assert isinstance(any_store, StoreBackend)


def test_prune_by_age_and_count_never_deletes_running(any_store: Any) -> None:
    now, day = time.time(), 86400
    any_store.save(make_result("old1", started_at=now - 40 * day, n_steps=1, entries=1))
    any_store.save(make_result("oldrun", started_at=now - 50 * day, status="running", n_steps=1, entries=1))
    for i in range(3):
        any_store.save(make_result(f"new{i}", started_at=now - (5 - i) * 60, n_steps=1, entries=1))
    assert any_store.prune() == 0
    assert any_store.prune(max_age_days=30) == 1
    assert any_store.prune(max_count=1) == 2
    assert [r["run_id"] for r in any_store.list(limit=0)] == ["new2", "oldrun"]
    assert any_store.prune(max_age_days=0, max_count=0) == 1
    assert [r["run_id"] for r in any_store.list()] == ["oldrun"]


def test_unicode_and_large_traces_round_trip(any_store: Any) -> None:
    res = make_result("uni", n_steps=40, entries=2)
    res.answer = "Ünïcødé ✓ — 日本語 \u2028 'quotes' \"double\" %s %(x)s ?"
    any_store.save(res)
    assert must(any_store.get("uni")) == res.trace()
    assert must(any_store.summary("uni"))["answer"] == res.answer


def test_factory_picks_the_back_end(tmp_path, pg_url: str) -> None:
    sqlite_settings = load_settings(environ={"REASONKIT_DATA_DIR": str(tmp_path)})
    assert database_url(sqlite_settings) is None
    with open_store(sqlite_settings) as s:
        assert type(s).__name__ == "SqliteRunStore" and s.path == tmp_path / "runs.db"
    pg_settings = load_settings(environ={"REASONKIT_DATABASE_URL": pg_url})
    assert database_url(pg_settings) == pg_url
    from reasonkit.store.postgres import PostgresRunStore

    with open_store(pg_settings) as s:
        assert isinstance(s, PostgresRunStore)
        assert s.lease_secs == 30.0
    assert store_location(pg_settings).startswith("postgresql://reasonkit@127.0.0.1:")


def test_a_url_of_another_kind_is_a_clear_error_without_the_url(tmp_path) -> None:
    settings = load_settings(environ={"REASONKIT_DATABASE_URL": "mysql://u:s3cret-pw@db/x"})
    with pytest.raises(StoreError, match=r"must be a postgresql://") as info:
        open_store(settings)
    assert "s3cret-pw" not in str(info.value)


def test_maintenance_hooks_are_declared_with_defaults_on_both_back_ends(any_store: Any) -> None:
    """Callers use the hooks without probing: a back end without the feature answers the default."""
    sqlite = any_store.dialect.name == "sqlite"
    res = make_result("hooks", n_steps=1, entries=1)
    any_store.start(res)
    any_store.save_final(res.trace())
    assert any_store.pending_finals() == 0 and must(any_store.summary("hooks"))["status"] == "complete"
    assert any_store.checkpoint() is True
    any_store.start_maintenance(lambda: load_settings(environ={}).storage)
    # both: a maintenance thread (retried final saves, retention) and write-failure health
    assert any_store.maintenance is not None
    assert any_store.health_check() == {"status": "healthy", "path": str(any_store.path), "write_errors": 0}
    if sqlite:  # no leases
        assert any_store.lease("hooks") is None
    else:  # leases
        assert must(any_store.lease("hooks"))[0] == any_store.owner_id
    keys = any_store.idempotency_keys()
    try:
        assert keys.claim("c", "k", "fp", "hooks", 60.0).new and keys.path == any_store.path
    finally:
        keys.close()
