"""The PostgreSQL run store's schema: versioned migrations, applied once under an advisory lock.

`reasonkit_schema` holds one row per applied version. `migrate()` takes a session advisory lock, so
when several replicas start at once one of them migrates and the others wait for it, then find
nothing left to do. A database whose schema is newer than this ReasonKit is refused.

The `runs` table is declared with the SQLite store's in `reasonkit.store.table`: the same columns,
plus (since version 2) the owner's replica id and the lease a running run holds
(reasonkit.store.liveness).
"""

from __future__ import annotations

from typing import Any

from reasonkit.errors import StoreError
from reasonkit.store.table import POSTGRES, migrations

#: pg_advisory_lock key of the migrations ("REASONK1" as a big-endian bigint).
MIGRATION_LOCK = 0x524541534F4E4B31
#: How long a replica waits for another one's migration before giving up.
LOCK_TIMEOUT = "120s"

#: Version -> the statements that bring a database from version-1 to version (reasonkit.store.table).
MIGRATIONS: dict[int, list[str]] = migrations(POSTGRES)
SCHEMA_VERSION = max(MIGRATIONS)

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS reasonkit_schema "
    "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
)


def current_version(conn: Any) -> int:
    """The schema version of the database (0: none yet)."""
    row = conn.execute("SELECT to_regclass('reasonkit_schema') IS NOT NULL AS present").fetchone()
    if not _first(row):
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) AS version FROM reasonkit_schema").fetchone()
    return int(_first(row))


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def _check_not_newer(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the run database {where} was migrated by a newer ReasonKit (schema {version}, this version "
            f"knows {SCHEMA_VERSION}); upgrade ReasonKit"
        )


def migrate(conn: Any, where: str) -> tuple[int, int]:
    """Bring the database up to `SCHEMA_VERSION` (an autocommit connection; each version in its own
    transaction). Returns (version before, version after). Replicas that call it at once wait on the
    advisory lock: one migrates, the others then find the schema current."""
    version = current_version(conn)
    _check_not_newer(version, where)
    if version == SCHEMA_VERSION:
        return version, version
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        with conn.transaction():
            conn.execute(_VERSION_TABLE)
        before = current_version(conn)  # again, under the lock: another replica may have migrated
        _check_not_newer(before, where)
        for target in range(before + 1, SCHEMA_VERSION + 1):
            with conn.transaction():
                for statement in MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO reasonkit_schema (version, applied_at) "
                    "VALUES (%s, EXTRACT(EPOCH FROM clock_timestamp()))",
                    (target,),
                )
        return before, SCHEMA_VERSION
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        conn.execute("RESET lock_timeout")
