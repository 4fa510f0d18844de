"""The `runs` table declared once (reasonkit.store.table): the DDL generated from the column list says
what the hand-written migrations said, and databases those migrations made keep working."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from reasonkit.principal import Principal
from reasonkit.store import SqliteRunStore, postgres_schema, schema
from reasonkit.store.sqlite import MIGRATIONS, SCHEMA_VERSION
from reasonkit.store.table import POSTGRES, SQLITE, migrations

from ._helpers import make_result, must

# The migrations as they were written by hand before the table was declared once (frozen here: the
# databases they made are out there).
OLD_SQLITE_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      REAL NOT NULL,
    finished_at     REAL,
    updated_at      REAL NOT NULL,
    complete        INTEGER NOT NULL DEFAULT 0,
    confidence      REAL,
    min_confidence  REAL,
    meets_threshold INTEGER NOT NULL DEFAULT 0,
    stop_reason     TEXT,
    provider        TEXT NOT NULL DEFAULT '',
    model           TEXT NOT NULL DEFAULT '',
    inputs          TEXT NOT NULL DEFAULT '{}',
    answer          TEXT NOT NULL DEFAULT '',
    tokens_input    INTEGER NOT NULL DEFAULT 0,
    tokens_output   INTEGER NOT NULL DEFAULT 0,
    tokens_cache_read  INTEGER NOT NULL DEFAULT 0,
    tokens_cache_write INTEGER NOT NULL DEFAULT 0,
    tokens_total    INTEGER NOT NULL DEFAULT 0,
    cost_usd        REAL NOT NULL DEFAULT 0,
    duration_ms     REAL NOT NULL DEFAULT 0,
    owner_host      TEXT NOT NULL DEFAULT '',
    owner_pid       INTEGER,
    owner_start     TEXT NOT NULL DEFAULT '',
    trace           TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at DESC);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, started_at DESC);
CREATE INDEX IF NOT EXISTS runs_name ON runs (name, started_at DESC);
"""

OLD_POSTGRES_V1 = [
    """CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      DOUBLE PRECISION NOT NULL,
    finished_at     DOUBLE PRECISION,
    updated_at      DOUBLE PRECISION NOT NULL,
    complete        INTEGER NOT NULL DEFAULT 0,
    confidence      DOUBLE PRECISION,
    min_confidence  DOUBLE PRECISION,
    meets_threshold INTEGER NOT NULL DEFAULT 0,
    stop_reason     TEXT,
    provider        TEXT NOT NULL DEFAULT '',
    model           TEXT NOT NULL DEFAULT '',
    inputs          TEXT NOT NULL DEFAULT '{}',
    answer          TEXT NOT NULL DEFAULT '',
    tokens_input    BIGINT NOT NULL DEFAULT 0,
    tokens_output   BIGINT NOT NULL DEFAULT 0,
    tokens_cache_read  BIGINT NOT NULL DEFAULT 0,
    tokens_cache_write BIGINT NOT NULL DEFAULT 0,
    tokens_total    BIGINT NOT NULL DEFAULT 0,
    cost_usd        DOUBLE PRECISION NOT NULL DEFAULT 0,
    duration_ms     DOUBLE PRECISION NOT NULL DEFAULT 0,
    owner_host      TEXT NOT NULL DEFAULT '',
    owner_pid       INTEGER,
    owner_start     TEXT NOT NULL DEFAULT '',
    trace           TEXT
)""",
    "CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at DESC)",
    "CREATE INDEX IF NOT EXISTS runs_status ON runs (status, started_at DESC)",
    "CREATE INDEX IF NOT EXISTS runs_name ON runs (name, started_at DESC)",
]

OLD_POSTGRES_V2 = [
    # The replica that owns a run, and until when its lease runs (seconds since the epoch, database
    # clock); a running run whose lease has expired is marked interrupted by any replica.
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS owner_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS lease_until DOUBLE PRECISION",
    "CREATE INDEX IF NOT EXISTS runs_running_lease ON runs (lease_until) WHERE status = 'running'",
]


def _words(statements: list[str]) -> list[str]:
    return [" ".join(statement.split()) for statement in statements]


def test_generated_migrations_say_what_the_hand_written_ones_said() -> None:
    old_sqlite = [s for s in OLD_SQLITE_V1.split(";") if s.strip()]
    assert _words(MIGRATIONS[1]) == _words(old_sqlite) and SCHEMA_VERSION == max(MIGRATIONS) == 2
    assert _words(postgres_schema.MIGRATIONS[1]) == _words(OLD_POSTGRES_V1)
    assert _words(postgres_schema.MIGRATIONS[2]) == _words(OLD_POSTGRES_V2)
    # version 3 (2 in SQLite): the owner of a run (reasonkit/principal.py), NULL for older runs
    owner = [
        "ALTER TABLE runs ADD COLUMN{} owner TEXT",
        "CREATE INDEX IF NOT EXISTS runs_owner ON runs (owner, started_at DESC)",
    ]
    assert MIGRATIONS[2] == [owner[0].format(""), owner[1]]
    assert postgres_schema.MIGRATIONS[3] == [owner[0].format(" IF NOT EXISTS"), owner[1]]
    assert postgres_schema.SCHEMA_VERSION == 3 and migrations(POSTGRES) == postgres_schema.MIGRATIONS


def test_field_lists_come_from_the_column_list() -> None:
    create = MIGRATIONS[1][0]
    assert all(f"    {name} " in create for name in schema.ROW_FIELDS if name != "owner")  # owner: v2
    assert "owner TEXT" in MIGRATIONS[2][0]
    assert "owner_id" not in schema.ROW_FIELDS and "trace" not in schema.ROW_FIELDS
    assert set(schema.SAVE_FIELDS) <= {*schema.ROW_FIELDS, "trace"}
    assert set(schema.LIST_FIELDS) <= set(schema.ROW_FIELDS)
    assert SQLITE.sql("a = ? AND b = ?") == "a = ? AND b = ?"
    assert POSTGRES.sql("a = ? AND b = ?") == "a = %s AND b = %s"


def _columns(path: Path) -> list[tuple[Any, ...]]:
    raw = sqlite3.connect(path)
    try:
        return (
            raw.execute("PRAGMA table_info(runs)").fetchall()
            + raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name").fetchall()
        )
    finally:
        raw.close()


def test_a_sqlite_file_made_by_the_hand_written_schema_keeps_working(tmp_path: Path) -> None:
    old = tmp_path / "old" / "runs.db"
    old.parent.mkdir()
    raw = sqlite3.connect(old)
    raw.executescript(OLD_SQLITE_V1)
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO runs (run_id, kind, name, status, started_at, updated_at, trace) "
        "VALUES ('old', 'protocol', 'gigathink', 'complete', 1, 1, '{\"run_id\": \"old\"}')"
    )
    raw.commit()
    raw.close()
    new = tmp_path / "new" / "runs.db"
    SqliteRunStore(new).close()
    SqliteRunStore(old).close()  # migrated to the current version
    assert _columns(old) == _columns(new)  # the same columns, types, defaults, keys and indexes
    with SqliteRunStore(old) as store:
        assert must(store.get("old")) == {"run_id": "old", "owner": None}  # migrated: admins only
        fresh = make_result("fresh", n_steps=1, entries=1)
        fresh.owner = "alice"
        store.save(fresh)
        assert [r["run_id"] for r in store.list()] == ["fresh", "old"]
        assert [r["run_id"] for r in store.list(viewer=Principal("alice"))] == ["fresh"]
        assert store.list(viewer=Principal("bob")) == []
        assert [r["run_id"] for r in store.list(viewer=Principal("ops", admin=True))] == ["fresh", "old"]
        assert store.integrity_check() == "ok"


def _pg_columns(url: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'runs' ORDER BY ordinal_position"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, replace(indexdef, current_schema() || '.', '') FROM pg_indexes "
            "WHERE schemaname = current_schema() ORDER BY 1"
        ).fetchall()
    return columns + indexes


def test_a_postgres_database_made_by_the_hand_written_schema_keeps_working(
    pg_url: str, postgres_server
) -> None:
    import psycopg

    from reasonkit.store.postgres import PostgresRunStore

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(postgres_schema._VERSION_TABLE)
        for statement in OLD_POSTGRES_V1 + OLD_POSTGRES_V2:
            conn.execute(statement)
        conn.execute("INSERT INTO reasonkit_schema VALUES (1, 0), (2, 0)")
    fresh = postgres_server.new_schema()
    try:
        PostgresRunStore(postgres_server.schema_url(fresh)).close()
        PostgresRunStore(pg_url).close()  # migrated to the current version
        assert _pg_columns(pg_url) == _pg_columns(postgres_server.schema_url(fresh))
    finally:
        postgres_server.drop_schema(fresh)
    with PostgresRunStore(pg_url) as store:
        assert store.schema_version == 3
        store.save(make_result("fresh", n_steps=1, entries=1))
        assert must(store.get("fresh"))["run_id"] == "fresh" and store.count() == 1
