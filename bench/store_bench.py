"""`python -m bench.store_bench`: what the run store costs per run and per step, SQLite against
PostgreSQL, on this machine.

A run is recorded as the recorder records it: `start_trace` once, `save_trace` after every finished
step (the whole trace, growing), a final `save_trace`; then it is read back once (`get`) and listed
(`list`). Realistic traces come from tests/store/_helpers.py (about 10 KiB per step). PostgreSQL is a
throwaway server started here (`initdb` in a temporary folder, fsync and synchronous_commit on, TCP
on 127.0.0.1: no network latency, which a real database adds once per statement); SQLite is the
default store (WAL, synchronous=NORMAL) in a temporary folder. Both run the same statements from one
thread, then from 4 threads at once (4 runs in flight).

Section 7 of `python -m bench` (`--only store`); without PostgreSQL installed it measures SQLite
alone and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.traces import make_result  # noqa: E402
from reasonkit.store import SqliteRunStore  # noqa: E402


def record_run(store: Any, run_id: str, steps: int, step_times: list[float]) -> float:
    """One run as the recorder writes it; returns its total store time (s) and appends each step's
    save time to `step_times`."""
    res = make_result(run_id, status="running", n_steps=steps, entries=1)
    trace = res.trace()
    all_steps = trace["entries"][0]["steps"]
    t0 = time.perf_counter()
    store.start_trace({**trace, "entries": [{**trace["entries"][0], "steps": []}]})
    for k in range(1, steps + 1):
        partial = {**trace, "entries": [{**trace["entries"][0], "steps": all_steps[:k]}]}
        t = time.perf_counter()
        store.save_trace(partial)
        step_times.append(time.perf_counter() - t)
    store.save_trace({**trace, "status": "complete"})
    return time.perf_counter() - t0


def measure(store: Any, runs: int, steps: int, threads: int) -> dict[str, float]:
    per_run: list[float] = []
    per_step: list[float] = []
    lock = threading.Lock()
    prefix = f"{type(store).__name__[:2]}{threads}{steps}-{time.time_ns() % 10**8}-"

    def worker(w: int) -> None:
        mine_runs: list[float] = []
        mine_steps: list[float] = []
        for i in range(max(1, runs // threads)):  # at least one run per thread
            mine_runs.append(record_run(store, f"{prefix}{w}-{i}", steps, mine_steps))
        with lock:
            per_run.extend(mine_runs)
            per_step.extend(mine_steps)

    wall = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - wall
    reads = _timed(lambda: store.get(f"{prefix}0-0"), 50)
    lists = _timed(lambda: store.list(limit=50), 20)
    return {
        "run_ms": statistics.median(per_run) * 1000,
        "step_ms": statistics.median(per_step) * 1000,
        "step_p95_ms": _p95(per_step) * 1000,
        "runs_per_s": len(per_run) / wall,
        "get_ms": statistics.median(reads) * 1000,
        "list_ms": statistics.median(lists) * 1000,
    }


def _timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def bench_store(runs: int = 40, steps: int = 12, durable_progress: bool = False) -> dict[str, Any]:
    """Both back ends, 1 and then 4 runs in flight; PostgreSQL only where it is installed (else the
    result says so and has the SQLite rows alone)."""
    from bench.postgres_server import find_postgres_bin, running_postgres

    size_kib = len(json.dumps(make_result("x", n_steps=steps, entries=1).trace())) / 1024
    out: dict[str, Any] = {"runs": runs, "steps": steps, "size_kib": size_kib, "rows": []}
    with tempfile.TemporaryDirectory(prefix="rk-store-bench-") as tmp, contextlib.ExitStack() as stack:
        stores: dict[str, Any] = {"sqlite": SqliteRunStore(Path(tmp) / "runs.db")}
        stack.callback(stores["sqlite"].close)
        if find_postgres_bin() is None:
            out["postgres_error"] = "PostgreSQL is not installed (apt-get install postgresql)"
        elif importlib.util.find_spec("psycopg") is None:
            out["postgres_error"] = "psycopg is not installed (the `postgres` extra)"
        else:
            from reasonkit.store.postgres import PostgresRunStore

            pg = stack.enter_context(running_postgres(durable=True))
            stores["postgres"] = PostgresRunStore(pg.url, lease_secs=30)
            stores["postgres"].durable_progress = durable_progress
            stack.callback(stores["postgres"].close)
        for threads in (1, 4):
            for name, store in stores.items():
                measure(store, 4, steps, 1)  # warm-up: connections, caches
                out["rows"].append(
                    {"backend": name, "threads": threads, **measure(store, runs, steps, threads)}
                )
    return out


LABELS = [
    ("run_ms", "store time per run, ms"),
    ("step_ms", "save per step, ms"),
    ("step_p95_ms", "save per step p95, ms"),
    ("runs_per_s", "runs recorded per s"),
    ("get_ms", "`get` (full trace), ms"),
    ("list_ms", "`list` 50 rows, ms"),
]


def markdown(res: dict[str, Any]) -> str:
    rows = [
        f"{res['runs']} runs of {res['steps']} steps each (a final trace of {res['size_kib']:.0f} KiB), per "
        "back end; medians. Ratio: PostgreSQL / SQLite.",
        "",
        "| runs in flight | metric | SQLite | PostgreSQL | ratio |",
        "|---:|---|---:|---:|---:|",
    ]
    by = {(r["backend"], r["threads"]): r for r in res["rows"]}
    for threads in sorted({r["threads"] for r in res["rows"]}):
        sq, pg = by[("sqlite", threads)], by.get(("postgres", threads))
        for key, label in LABELS:
            if pg is None:
                rows.append(f"| {threads} | {label} | {sq[key]:.2f} | (not measured) | |")
                continue
            ratio = pg[key] / sq[key] if sq[key] else float("nan")
            rows.append(f"| {threads} | {label} | {sq[key]:.2f} | {pg[key]:.2f} | {ratio:.2f} |")
    if res.get("postgres_error"):
        rows += ["", f"PostgreSQL not measured: {res['postgres_error']}."]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.store_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40, help="runs per back end and setting (default 40)")
    ap.add_argument("--steps", type=int, default=12, help="steps per run (default 12)")
    ap.add_argument("--out", default="-", help="Markdown file, or - for stdout")
    ap.add_argument(
        "--durable-progress",
        action="store_true",
        help="PostgreSQL: wait for the WAL flush on every progress save too (the default does not)",
    )
    args = ap.parse_args(argv)
    text = markdown(bench_store(args.runs, args.steps, args.durable_progress))
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
