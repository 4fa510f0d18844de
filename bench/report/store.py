"""Section 7: the run store, SQLite against PostgreSQL (bench/store_bench.py)."""

from __future__ import annotations

from typing import Any


def store_section(res: dict[str, Any]) -> list[str]:
    from bench.store_bench import markdown

    out = ["## 7. Run store: SQLite vs PostgreSQL", ""]
    if "error" in res:
        return out + [f"Not measured: {res['error']}.", ""]
    return out + [
        "**What it measures.** Each run recorded as the recorder records it (`start_trace`, a "
        "`save_trace` of the growing trace after each step, a final save), then read once and listed; "
        "realistic traces (bench/traces.py). SQLite: the default store (WAL, `synchronous=NORMAL`) in a "
        "temporary folder. PostgreSQL: a throwaway server on 127.0.0.1 over TCP (no network latency: a "
        "real database adds one round trip per statement), fsync on, progress saves with "
        "`synchronous_commit = off` and a durable final save (the default; `python -m bench.store_bench "
        "--durable-progress` measures waiting for every flush). 1 and then 4 runs in flight.",
        "",
        markdown(res).rstrip("\n"),
        "",
        "How to read it: these writes happen in a worker thread and never delay a run's progress "
        "(docs/architecture.md); a run's store time is milliseconds against seconds to minutes of LLM "
        "time. PostgreSQL's price buys one store for replicas on many hosts.",
        "",
    ]
