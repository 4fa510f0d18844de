"""The trace <-> row mapping of the `runs` table, and the queries both back ends share.

The table itself (columns, indexes, each back end's DDL and migrations) is declared once in
`reasonkit.store.table`; the field lists here are read from it. Queries are written with `?`
placeholders; the store translates them for PostgreSQL (`Dialect.sql`).
"""

from __future__ import annotations

import json
from typing import Any

from reasonkit.store.table import SHARED_COLUMNS, Dialect

#: The columns of a summary (everything both back ends have but the trace).
ROW_FIELDS = tuple(name for name in SHARED_COLUMNS if name != "trace")
#: The columns of a listing row.
LIST_FIELDS = (
    "run_id", "started_at", "finished_at", "kind", "name", "status", "confidence", "meets_threshold",
    "duration_ms", "cost_usd", "tokens_total",
)  # fmt: skip
#: A row as either back end returns it (a sqlite3.Row or a psycopg dict row): indexed by column name.
Row = Any
#: Columns a save overwrites (never the owner, never started_at once set).
SAVE_FIELDS = (
    "status", "finished_at", "updated_at", "complete", "confidence", "min_confidence",
    "meets_threshold", "stop_reason", "provider", "model", "inputs", "answer", "tokens_input",
    "tokens_output", "tokens_cache_read", "tokens_cache_write", "tokens_total", "cost_usd",
    "duration_ms", "trace",
)  # fmt: skip
#: A running run whose owner is gone: `interrupted`, with the reason unless it already had one.
INTERRUPT_SQL = (
    "UPDATE runs SET status = 'interrupted', complete = 0, "
    "stop_reason = COALESCE(stop_reason, ?), updated_at = ?, trace = ? WHERE run_id = ?"
)


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
        "owner": trace.get("owner"),
    }


def upsert_sql(
    dialect: Dialect, columns: list[str], update: list[str], computed: dict[str, str] | None = None
) -> str:
    """INSERT of `columns` (one placeholder each) and of the `computed` columns (column -> SQL
    expression) that, for a run already stored, overwrites the `update` and the computed columns."""
    computed = computed or {}
    values = [dialect.param] * len(columns) + list(computed.values())
    overwrite = [*update, *computed]
    return (
        f"INSERT INTO runs ({', '.join([*columns, *computed])}) VALUES ({', '.join(values)}) "
        f"ON CONFLICT (run_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in overwrite)}"
    )


def summary_from_row(row: Row) -> dict[str, Any]:
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


def listing_from_row(row: Row) -> dict[str, Any]:
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
    dialect: Dialect,
    limit: int | None,
    status: str | None,
    kind_or_name: str | None,
    owner: str | None = None,
) -> tuple[str, list[Any]]:
    """The SELECT of `list()`: newest first, optionally one status (else InputError), one kind or
    name, and/or one owner."""
    where: list[str] = []
    args: list[Any] = []
    if owner is not None:
        where.append("owner = ?")
        args.append(owner)
    if status:
        # imported here: `rk runs` imports the store, and must start fast
        from reasonkit.engine.result import RUN_STATUSES
        from reasonkit.errors import InputError

        if status not in RUN_STATUSES:
            raise InputError(f"unknown run status {status!r}: use one of {', '.join(RUN_STATUSES)}")
        where.append("status = ?")
        args.append(status)
    if kind_or_name:
        where.append("(kind = ? OR name = ?)")
        args += [kind_or_name, kind_or_name]
    sql = f"SELECT {', '.join(LIST_FIELDS)} FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at DESC, run_id DESC LIMIT ?"
    args.append(int(limit) if limit is not None and limit > 0 else dialect.no_limit)
    return sql, args


def prune_queries(
    dialect: Dialect, max_age_days: float | None, max_count: int | None, now: float
) -> list[tuple[str, tuple[Any, ...]]]:
    """The DELETEs of `prune()`: finished runs started more than `max_age_days` before `now`, then
    all but the newest `max_count` finished runs (running runs never)."""
    queries: list[tuple[str, tuple[Any, ...]]] = []
    if max_age_days is not None:
        sql = "DELETE FROM runs WHERE status != 'running' AND started_at < ?"
        queries.append((sql, (now - max_age_days * 86400,)))
    if max_count is not None:
        sql = (
            "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs WHERE status != 'running' "
            "ORDER BY started_at DESC, run_id DESC LIMIT ? OFFSET ?)"
        )
        queries.append((sql, (dialect.no_limit, max_count)))
    return queries
