"""Section 3c: memory per concurrent run (tracemalloc peak, retained traces, RSS growth)."""

from __future__ import annotations

import gc
import os
import time
from collections import Counter
from typing import Any

import anyio

from bench.common import Progress, quiet
from bench.engine_bench.workload import BenchProvider, run_target
from bench.procs import reset_peak, status_kb
from reasonkit.engine import Engine
from reasonkit.engine.result import RunResult
from reasonkit.protocol.loader import Registry


def bench_memory(
    registry: Registry,
    targets: list[tuple[str, str]] | None = None,
    *,
    concurrencies: tuple[int, ...] = (1, 10, 100),
    latency: float = 0.05,
    max_concurrency: int = 16,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """N runs of a target at once (one Engine per run, as the MCP server makes one per tool call;
    one shared fixed-latency provider, so all N are alive together). Per run: the tracemalloc peak
    of Python allocations above the baseline while they ran / N, what the N finished RunResults
    still hold (their traces) / N, and the process's RSS growth / N (VmHWM reset before each
    measurement; Linux only)."""
    import tracemalloc

    targets = targets or [("profile", "balanced"), ("protocol", "gigathink")]
    rows: list[dict[str, Any]] = []
    was_tracing = tracemalloc.is_tracing()
    pid = os.getpid()

    async def batch(kind: str, name: str, n: int, provider: BenchProvider) -> list[RunResult]:
        results: list[RunResult] = []

        async def one() -> None:
            engine = Engine(registry, provider, max_concurrency=max_concurrency)
            results.append(await run_target(engine, registry, kind, name))

        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
        return results

    try:
        for kind, name in targets:
            provider = BenchProvider(latency)
            anyio.run(
                batch, kind, name, 1, BenchProvider(0.0), backend="asyncio"
            )  # warm caches outside the measurement
            for n in concurrencies:
                gc.collect()
                if not tracemalloc.is_tracing():
                    tracemalloc.start()
                base, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                rss_ok = reset_peak(pid)
                rss0 = status_kb(pid, "VmRSS")
                provider.reset()
                t0 = time.perf_counter()
                results = anyio.run(batch, kind, name, n, provider, backend="asyncio")
                wall = time.perf_counter() - t0
                current, peak = tracemalloc.get_traced_memory()
                hwm = status_kb(pid, "VmHWM") if rss_ok else None
                statuses = Counter(r.status for r in results)
                del results
                gc.collect()
                after, _ = tracemalloc.get_traced_memory()
                rows.append(
                    {
                        "kind": kind,
                        "name": name,
                        "concurrent_runs": n,
                        "peak_in_flight": provider.peak_in_flight,
                        "calls_per_run": provider.calls / n,
                        "wall_ms": wall * 1000,
                        "peak_kb_per_run": (peak - base) / 1024 / n,
                        "retained_kb_per_run": (current - after) / 1024 / n,
                        "rss_kb_per_run": (hwm - rss0) / n if hwm is not None and rss0 is not None else None,
                        "statuses": dict(statuses),
                    }
                )
                progress(
                    f"memory: {kind} {name} x{n}: {rows[-1]['peak_kb_per_run']:.0f} KB per run (tracemalloc "
                    "peak)"
                )
    finally:
        if not was_tracing and tracemalloc.is_tracing():
            tracemalloc.stop()
    return {
        "settings": {
            "latency_ms": latency * 1000,
            "max_concurrency": max_concurrency,
            "concurrencies": list(concurrencies),
            "pid": pid,
        },
        "rows": rows,
    }
