"""Run store: every run with its full trace in an embedded SQLite database (see docs/runs.md)."""

from reasonkit.store.sqlite import STATUSES, RunRecorder, RunStore, StoreError

__all__ = ["STATUSES", "RunRecorder", "RunStore", "StoreError"]
