"""`open_store(settings)`: the run store that `[storage]` asks for.

`[storage] url` (or `REASONKIT_DATABASE_URL`) set to a `postgresql://` URL: the PostgreSQL store that
replicas share (reasonkit.store.postgres; needs the `postgres` extra). Unset: the embedded SQLite file
`runs.db` in the data directory (reasonkit.store.sqlite).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonkit.errors import StoreError
from reasonkit.store.base import StoreBackend, redact_url

if TYPE_CHECKING:
    from reasonkit.config import Settings

SCHEMES = ("postgresql://", "postgres://")


def database_url(settings: Settings) -> str | None:
    """The PostgreSQL URL from `[storage] url`, or None for SQLite. A URL of another kind is a
    StoreError naming the setting (without the URL, which may hold a password)."""
    secret = settings.storage.url
    if secret is None:
        return None
    url = secret.get_secret_value().strip()
    if not url:
        return None
    if not url.lower().startswith(SCHEMES):
        raise StoreError(
            "[storage] url (REASONKIT_DATABASE_URL) must be a postgresql://user:password@host:5432/db URL; "
            "leave it unset for the embedded SQLite store"
        )
    return url


def open_store(settings: Settings, *, metrics: Any = None, migrate: bool = True) -> StoreBackend:
    """The run store for `settings` (opened: the PostgreSQL schema migrated when `migrate`). Raises
    StoreError when it cannot be opened. `metrics` goes to the store (its write-error counters)."""
    url = database_url(settings)
    if url is None:
        from reasonkit.store.sqlite import SqliteRunStore

        return SqliteRunStore.for_settings(settings, metrics=metrics)
    try:
        from reasonkit.store.postgres import PostgresRunStore
    except ImportError as exc:
        raise StoreError(
            f"[storage] url names a PostgreSQL database, but its driver is not installed ({exc.name}): "
            "pip install 'reasonkit[postgres]'"
        ) from None
    store = PostgresRunStore(url, lease_secs=settings.storage.lease_secs, migrate=migrate, metrics=metrics)
    store.redact_pii = settings.privacy.redact_pii
    return store


def store_location(settings: Settings) -> str:
    """Where `open_store(settings)` keeps runs, for messages: the SQLite file, or the database URL
    without its password."""
    url = database_url(settings)
    if url is None:
        return str(Path(settings.data_dir()) / "runs.db")
    return redact_url(url)
