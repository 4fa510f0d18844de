"""The run store interface: what the run service, the recorder, the CLI and the server use.

Two implementations: `reasonkit.store.sqlite.RunStore` (embedded, one host) and
`reasonkit.store.postgres.PostgresRunStore` (one database shared by replicas).
`reasonkit.store.factory.open_store(settings)` picks one from `[storage] url`.

Every method is synchronous and may block on I/O: async callers run it in a worker thread
(`anyio.to_thread.run_sync`). Every failure leaves as a `StoreError`.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from reasonkit.engine.result import RunResult


@runtime_checkable
class StoreBackend(Protocol):
    """A run store. `path` names it in messages: the SQLite file, or the database URL without its
    password."""

    @property
    def path(self) -> Path | str: ...

    def close(self) -> None: ...

    # writes
    def start(self, result: RunResult) -> None:
        """Record a run as `running`, owned by this process."""

    def save(self, result: RunResult) -> None:
        """Insert or update a run with its full trace."""

    def start_trace(self, trace: dict[str, Any]) -> None:
        """`start()` for a trace (`RunResult.trace()`)."""

    def save_trace(self, trace: dict[str, Any]) -> None:
        """`save()` for a trace; a stored run keeps its owner and start time."""

    def mark_interrupted(self) -> int:
        """Mark `running` runs whose owner is gone as `interrupted`; returns how many."""

    def prune(self, max_age_days: float | None = None, max_count: int | None = None) -> int:
        """Delete old finished runs (never running ones); returns how many."""

    def prune_if_due(self, max_age_days: float | None, max_count: int | None, every_s: float = 300.0) -> int:
        """`prune()` at most every `every_s` seconds."""

    # reads
    def get(self, run_id: str) -> dict[str, Any] | None:
        """The full trace of a run, or None."""

    def summary(self, run_id: str) -> dict[str, Any] | None:
        """The columns of a run (no trace), or None."""

    def list(
        self, limit: int = 50, status: str | None = None, kind_or_name: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Runs, newest first."""

    def resolve(self, prefix: str, limit: int = 10) -> builtins.list[str]:
        """Run ids equal to `prefix`, else those starting with it."""

    def count(self) -> int: ...


def redact_url(url: str) -> str:
    """The database URL with its password replaced by `***` (for messages and logs), parseable or
    not. Imported here: importing the store stays light (no pydantic; only PostgreSQL URLs need it)."""
    from reasonkit.config.show import mask_url

    return mask_url(url, "***")
