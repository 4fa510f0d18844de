"""Run store: every run with its full trace, in an embedded SQLite database or in a PostgreSQL
database that replicas share (see docs/runs.md, docs/deployment.md "Several replicas").

    reasonkit.store.base         StoreBackend: the base class both extend (lifecycle, reads, retention,
                                 maintenance hooks with their defaults)
    reasonkit.store.factory      open_store(settings): SQLite, or PostgreSQL when [storage] url is set
    reasonkit.store.sqlite       SqliteRunStore: the file (writes, crash recovery, upkeep)
    reasonkit.store.postgres     PostgresRunStore (+ postgres_schema: versioned migrations, leases)
    reasonkit.store.recorder     RunRecorder: saves a run as it goes, never delaying its progress
    reasonkit.store.table        the `runs` table, declared once: both back ends' DDL and migrations
    reasonkit.store.schema       the trace <-> row mapping and the queries both back ends share
    reasonkit.store.connections  the connection pool, write transactions, retries while locked
    reasonkit.store.liveness     run owners (host, pid, start time) and whether they are alive

`RunRecorder` (and anyio with it) is imported on first use: `rk runs` needs only the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reasonkit.store.base import StoreBackend
from reasonkit.store.factory import open_store
from reasonkit.store.sqlite import SqliteRunStore

if TYPE_CHECKING:
    from reasonkit.store.recorder import SAVE_EVENTS, RunRecorder

__all__ = ["SAVE_EVENTS", "RunRecorder", "SqliteRunStore", "StoreBackend", "open_store"]


def __getattr__(name: str) -> Any:
    if name in ("RunRecorder", "SAVE_EVENTS"):
        from reasonkit.store import recorder

        return getattr(recorder, name)
    raise AttributeError(f"module 'reasonkit.store' has no attribute {name!r}")
