"""The trace <-> row mapping of the `runs` table."""

from __future__ import annotations

import json

from reasonkit.store import schema

from ._helpers import make_result


def test_row_from_trace_columns() -> None:
    res = make_result("s1", n_steps=2, entries=1)
    res.tokens.cache_read, res.tokens.cache_write = 7, 3
    row = schema.row_from_trace(res.trace(), now=123.0)
    assert set(row) == set(schema.ROW_FIELDS) - {"owner_host", "owner_pid", "owner_start"}
    assert row["tokens_total"] == res.tokens.input + res.tokens.output + 10
    assert (row["tokens_cache_read"], row["tokens_cache_write"]) == (7, 3)
    assert row["updated_at"] == 123.0 and row["started_at"] == res.started_at
    assert json.loads(row["inputs"]) == res.inputs and row["complete"] == 1
    # a trace without a start time starts now; a missing status is "running"
    bare = schema.row_from_trace({"run_id": "s2"}, now=5.0)
    assert bare["started_at"] == 5.0 and bare["status"] == "running" and bare["confidence"] is None


def test_interrupted_trace() -> None:
    text = json.dumps({"run_id": "r", "status": "running", "complete": True, "stop_reason": None})
    marked = json.loads(schema.interrupted_trace(text, "the process ended") or "")
    assert marked == {
        "run_id": "r",
        "status": "interrupted",
        "complete": False,
        "stop_reason": "the process ended",
    }
    kept = json.dumps({"run_id": "r", "status": "running", "stop_reason": "budget reached"})
    assert json.loads(schema.interrupted_trace(kept, "x") or "")["stop_reason"] == "budget reached"
    assert schema.interrupted_trace("not json", "x") == "not json"
    assert schema.interrupted_trace("[1, 2]", "x") == "[1, 2]"
    assert schema.interrupted_trace(None, "x") is None
