"""The `runs` table declared once: its columns and indexes, and the DDL of both back ends generated
from them, so SQLite and PostgreSQL can never disagree about a column.

A column or index carries, per back end, the schema version that added it (absent: that back end
does not have it). Version 1 of a back end is one `CREATE TABLE` plus its indexes; a later version is
`ALTER TABLE ... ADD COLUMN` and `CREATE INDEX IF NOT EXISTS` for what it added. The old migrations
are thus regenerated, not copied: tests/store/test_table.py holds their original text and checks
that the generated statements still say the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SQLITE_NAME = "sqlite"
POSTGRES_NAME = "postgresql"
#: On both back ends since their first schema.
BOTH_V1: Mapping[str, int] = {SQLITE_NAME: 1, POSTGRES_NAME: 1}


@dataclass(frozen=True)
class Dialect:
    """What differs between the back ends' SQL: column types, the placeholder, the LIMIT value that
    means "no limit", how a migration adds a column, how a SELECT locks the rows it reads for the
    rest of its transaction (nothing in SQLite: a write transaction locks the whole file)."""

    name: str
    types: Mapping[str, str]  # logical type (text, real, int, bigint) -> the back end's type
    param: str
    no_limit: Any
    add_column: str
    lock_rows: str

    def sql(self, text: str) -> str:
        """`text` written with `?` placeholders, in this back end's placeholder."""
        return text if self.param == "?" else text.replace("?", self.param)


#: SQLite has no `ADD COLUMN IF NOT EXISTS`: its migrations run in one transaction with the version
#: check (`PRAGMA user_version`), so a column is never added twice.
SQLITE = Dialect(
    SQLITE_NAME,
    {"text": "TEXT", "real": "REAL", "int": "INTEGER", "bigint": "INTEGER"},
    "?",
    -1,
    "ALTER TABLE runs ADD COLUMN",
    "",
)
POSTGRES = Dialect(
    POSTGRES_NAME,
    {"text": "TEXT", "real": "DOUBLE PRECISION", "int": "INTEGER", "bigint": "BIGINT"},
    "%s",
    None,
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS",
    " FOR UPDATE",
)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of Dialect.types
    constraint: str = ""  # e.g. "NOT NULL DEFAULT 0"
    since: Mapping[str, int] = field(default_factory=lambda: BOTH_V1)

    def ddl(self, dialect: Dialect) -> str:
        return " ".join(filter(None, (self.name, dialect.types[self.type], self.constraint)))


@dataclass(frozen=True)
class Index:
    name: str
    on: str  # the indexed columns, e.g. "status, started_at DESC"
    where: str = ""  # a partial index's condition
    since: Mapping[str, int] = field(default_factory=lambda: BOTH_V1)

    def ddl(self) -> str:
        where = f" WHERE {self.where}" if self.where else ""
        return f"CREATE INDEX IF NOT EXISTS {self.name} ON runs ({self.on}){where}"


#: One row per run: the fields listings and the MCP server need as columns, then the full trace JSON
#: (`RunResult.trace()`) last (listing never reads it).
COLUMNS: tuple[Column, ...] = (
    Column("run_id", "text", "PRIMARY KEY"),
    Column("kind", "text", "NOT NULL"),
    Column("name", "text", "NOT NULL"),
    Column("status", "text", "NOT NULL"),
    Column("started_at", "real", "NOT NULL"),
    Column("finished_at", "real"),
    Column("updated_at", "real", "NOT NULL"),
    Column("complete", "int", "NOT NULL DEFAULT 0"),
    Column("confidence", "real"),
    Column("min_confidence", "real"),
    Column("meets_threshold", "int", "NOT NULL DEFAULT 0"),
    Column("stop_reason", "text"),
    Column("provider", "text", "NOT NULL DEFAULT ''"),
    Column("model", "text", "NOT NULL DEFAULT ''"),
    Column("inputs", "text", "NOT NULL DEFAULT '{}'"),
    Column("answer", "text", "NOT NULL DEFAULT ''"),
    Column("tokens_input", "bigint", "NOT NULL DEFAULT 0"),
    Column("tokens_output", "bigint", "NOT NULL DEFAULT 0"),
    Column("tokens_cache_read", "bigint", "NOT NULL DEFAULT 0"),
    Column("tokens_cache_write", "bigint", "NOT NULL DEFAULT 0"),
    Column("tokens_total", "bigint", "NOT NULL DEFAULT 0"),
    Column("cost_usd", "real", "NOT NULL DEFAULT 0"),
    Column("duration_ms", "real", "NOT NULL DEFAULT 0"),
    Column("owner_host", "text", "NOT NULL DEFAULT ''"),
    Column("owner_pid", "int"),
    Column("owner_start", "text", "NOT NULL DEFAULT ''"),
    Column("trace", "text"),
    # The replica that owns a run, and until when its lease runs (seconds since the epoch, database
    # clock); a running run whose lease has expired is marked interrupted by any replica.
    Column("owner_id", "text", "NOT NULL DEFAULT ''", {POSTGRES_NAME: 2}),
    Column("lease_until", "real", "", {POSTGRES_NAME: 2}),
    # The principal that started the run (reasonkit/principal.py); NULL for runs stored before
    # owners were recorded, which only admins see.
    Column("owner", "text", "", {SQLITE_NAME: 2, POSTGRES_NAME: 3}),
)

INDEXES: tuple[Index, ...] = (
    Index("runs_started", "started_at DESC"),
    Index("runs_status", "status, started_at DESC"),
    Index("runs_name", "name, started_at DESC"),
    Index("runs_running_lease", "lease_until", "status = 'running'", {POSTGRES_NAME: 2}),
    Index("runs_owner", "owner, started_at DESC", "", {SQLITE_NAME: 2, POSTGRES_NAME: 3}),
)

#: The columns every back end has (a summary reads them all but the trace).
SHARED_COLUMNS = tuple(c.name for c in COLUMNS if set(c.since) == set(BOTH_V1))


def migrations(dialect: Dialect) -> dict[int, list[str]]:
    """Version -> the statements that bring a database of `dialect` from version-1 to version."""
    added: list[Mapping[str, int]] = [c.since for c in COLUMNS] + [i.since for i in INDEXES]
    versions = sorted({since[dialect.name] for since in added if dialect.name in since})
    out: dict[int, list[str]] = {}
    for version in versions:
        columns = [c for c in COLUMNS if c.since.get(dialect.name) == version]
        indexes = [i.ddl() for i in INDEXES if i.since.get(dialect.name) == version]
        if version == 1:
            body = ",\n".join(f"    {c.ddl(dialect)}" for c in columns)
            out[version] = [f"CREATE TABLE IF NOT EXISTS runs (\n{body}\n)", *indexes]
        else:
            new_columns = [f"{dialect.add_column} {c.ddl(dialect)}" for c in columns]
            out[version] = [*new_columns, *indexes]
    return out
