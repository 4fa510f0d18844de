"""The `runs` table: its schema and migrations, and the mapping between a trace and a row.

One row per run: the fields `rk runs list` and the MCP server need as columns, plus the full trace
JSON (`RunResult.trace()`) as the last column (listing never reads it). `PRAGMA user_version` holds
the schema version.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA_V1 = """
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

#: Version -> statements that bring a database from version-1 to version. Add new entries here.
MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1}

#: The columns of a summary (everything but the trace).
ROW_FIELDS = (
    "run_id", "kind", "name", "status", "started_at", "finished_at", "updated_at", "complete",
    "confidence", "min_confidence", "meets_threshold", "stop_reason", "provider", "model", "inputs",
    "answer", "tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write",
    "tokens_total", "cost_usd", "duration_ms", "owner_host", "owner_pid", "owner_start",
)  # fmt: skip
#: The columns of a listing row.
LIST_FIELDS = (
    "run_id", "started_at", "finished_at", "kind", "name", "status", "confidence", "meets_threshold",
    "duration_ms", "cost_usd", "tokens_total",
)  # fmt: skip
#: Columns a save overwrites (never the owner, never started_at once set).
SAVE_FIELDS = (
    "status", "finished_at", "updated_at", "complete", "confidence", "min_confidence",
    "meets_threshold", "stop_reason", "provider", "model", "inputs", "answer", "tokens_input",
    "tokens_output", "tokens_cache_read", "tokens_cache_write", "tokens_total", "cost_usd",
    "duration_ms", "trace",
)  # fmt: skip


def migration_statements(version: int) -> list[str]:
    """The statements of one migration, one by one (executescript() would COMMIT the caller's
    transaction)."""
    return [stmt for stmt in MIGRATIONS[version].split(";") if stmt.strip()]


def row_from_trace(trace: dict[str, Any], now: float) -> dict[str, Any]:
    """The columns of a run row (owner and trace excluded) from a trace."""
    tokens = trace.get("tokens") or {}
    tokens_input, tokens_output = int(tokens.get("input", 0)), int(tokens.get("output", 0))
    cache_read, cache_write = int(tokens.get("cache_read", 0)), int(tokens.get("cache_write", 0))
    confidence = trace.get("confidence")
    return {
        "run_id": trace["run_id"],
        "kind": trace.get("kind", ""),
        "name": trace.get("name", ""),
        "status": trace.get("status", "running"),
        "started_at": float(trace.get("started_at") or now),
        "finished_at": trace.get("finished_at"),
        "updated_at": now,
        "complete": int(bool(trace.get("complete"))),
        "confidence": None if confidence is None else float(confidence),
        "min_confidence": trace.get("min_confidence"),
        "meets_threshold": int(bool(trace.get("meets_threshold"))),
        "stop_reason": trace.get("stop_reason"),
        "provider": trace.get("provider") or "",
        "model": trace.get("model") or "",
        "inputs": json.dumps(trace.get("inputs") or {}, ensure_ascii=False),
        "answer": trace.get("answer") or "",
        "tokens_input": tokens_input,
        "tokens_output": tokens_output,
        "tokens_cache_read": cache_read,
        "tokens_cache_write": cache_write,
        "tokens_total": tokens_input + tokens_output + cache_read + cache_write,
        "cost_usd": float(trace.get("cost_usd") or 0.0),
        "duration_ms": float(trace.get("duration_ms") or 0.0),
    }


def upsert_sql(columns: list[str], update: tuple[str, ...] | list[str]) -> str:
    """INSERT of `columns` that, for a run already stored, overwrites the `update` columns."""
    return (
        f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT(run_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in update)}"
    )


def summary_from_row(row: sqlite3.Row) -> dict[str, Any]:
    summary = {k: row[k] for k in ROW_FIELDS}
    summary["inputs"] = json.loads(summary["inputs"] or "{}")
    summary["complete"] = bool(summary["complete"])
    summary["meets_threshold"] = bool(summary["meets_threshold"])
    summary["tokens"] = {
        "input": summary.pop("tokens_input"),
        "output": summary.pop("tokens_output"),
        "cache_read": summary.pop("tokens_cache_read"),
        "cache_write": summary.pop("tokens_cache_write"),
    }
    return summary


def listing_from_row(row: sqlite3.Row) -> dict[str, Any]:
    listing = {k: row[k] for k in LIST_FIELDS}
    listing["meets_threshold"] = bool(listing["meets_threshold"])
    return listing


def interrupted_trace(trace_text: str | None, reason: str) -> str | None:
    """The stored trace JSON of a run whose process died, marked `interrupted` (unparseable text is
    kept as it is)."""
    try:
        trace = json.loads(trace_text) if trace_text else None
    except ValueError:
        return trace_text
    if not isinstance(trace, dict):
        return trace_text
    trace["status"] = "interrupted"
    trace["complete"] = False
    trace["stop_reason"] = trace.get("stop_reason") or reason
    return json.dumps(trace, ensure_ascii=False)


def list_query(
    limit: int | None, status: str | None, kind_or_name: str | None, param: str, no_limit: Any
) -> tuple[str, list[Any]]:
    """The SELECT of `list()` for either back end (`param`: `?` or `%s`; `no_limit`: the LIMIT value
    that means none there): newest first, optionally one status (else InputError) and/or one kind or
    name."""
    where: list[str] = []
    args: list[Any] = []
    if status:
        # imported here: `rk runs` imports the store, and must start fast
        from reasonkit.engine.result import RUN_STATUSES
        from reasonkit.errors import InputError

        if status not in RUN_STATUSES:
            raise InputError(f"unknown run status {status!r}: use one of {', '.join(RUN_STATUSES)}")
        where.append(f"status = {param}")
        args.append(status)
    if kind_or_name:
        where.append(f"(kind = {param} OR name = {param})")
        args += [kind_or_name, kind_or_name]
    sql = f"SELECT {', '.join(LIST_FIELDS)} FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY started_at DESC, run_id DESC LIMIT {param}"
    args.append(int(limit) if limit is not None and limit > 0 else no_limit)
    return sql, args
