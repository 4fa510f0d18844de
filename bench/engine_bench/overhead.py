"""Section 3a: orchestration overhead per LLM call, with a provider that answers at once."""

from __future__ import annotations

import gc
import time
from collections import Counter
from typing import Any

import anyio

from bench.common import Progress, quiet
from bench.engine_bench.workload import BenchProvider, protocol_inputs
from bench.stats import median, percentile
from reasonkit.engine import Engine
from reasonkit.protocol.loader import Registry

OVERHEAD_GOAL_MS = 0.5


class _GCTimer:
    """Counts garbage collections and the time they take, via gc.callbacks."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._t0

    def __enter__(self) -> _GCTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def bench_overhead(
    registry: Registry,
    protocols: list[str] | None = None,
    *,
    rounds: int = 5,
    runs: int = 60,
    warmup: int = 10,
    max_concurrency: int = 8,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Run each protocol `runs` times per round; per run, overhead = wall time / LLM calls.
    Process CPU time per call and the garbage collector's share are recorded alongside."""
    pids = list(protocols or sorted(registry.protocols))
    inputs = {pid: protocol_inputs(registry.protocol(pid)) for pid in pids}
    per: dict[str, dict[str, Any]] = {
        pid: {
            "per_call_ms": [],
            "cpu_per_call_ms": [],
            "wall_ms": [],
            "calls": [],
            "stub_s": 0.0,
            "gc_s": 0.0,
            "gc_n": 0,
            "statuses": Counter(),
            "rounds": [],
        }
        for pid in pids
    }
    round_pooled: list[list[float]] = []
    gct = _GCTimer()

    async def main() -> None:
        provider = BenchProvider(0.0)
        engine = Engine(registry, provider, max_concurrency=max_concurrency)
        for pid in pids:
            for _ in range(warmup):
                await engine.run_protocol(pid, inputs[pid])
        for r in range(rounds):
            gc.collect()
            pooled: list[float] = []
            order = pids[r % len(pids) :] + pids[: r % len(pids)]  # rotate so no protocol always goes first
            for pid in order:
                d = per[pid]
                vals: list[float] = []
                for _ in range(runs):
                    c0, s0, g0, gn0 = provider.calls, provider.stub_seconds, gct.seconds, gct.count
                    cpu0 = time.process_time()
                    t0 = time.perf_counter()
                    res = await engine.run_protocol(pid, inputs[pid])
                    wall = time.perf_counter() - t0
                    cpu = time.process_time() - cpu0
                    n = max(provider.calls - c0, 1)
                    d["statuses"][res.status] += 1
                    d["calls"].append(provider.calls - c0)
                    d["wall_ms"].append(wall * 1000)
                    d["stub_s"] += provider.stub_seconds - s0
                    d["gc_s"] += gct.seconds - g0
                    d["gc_n"] += gct.count - gn0
                    d["cpu_per_call_ms"].append(cpu * 1000 / n)
                    vals.append(wall * 1000 / n)
                d["per_call_ms"] += vals
                d["rounds"].append(median(vals))
                pooled += vals
            round_pooled.append(pooled)
            progress(f"overhead: round {r + 1}/{rounds}: p50 {median(pooled):.3f} ms per call")

    with gct:
        anyio.run(main, backend="asyncio")

    out: dict[str, Any] = {
        "goal_ms": OVERHEAD_GOAL_MS,
        "settings": {
            "rounds": rounds,
            "runs_per_round": runs,
            "warmup": warmup,
            "max_concurrency": max_concurrency,
        },
        "protocols": {},
    }
    all_vals: list[float] = []
    all_cpu: list[float] = []
    total_wall = total_calls = total_gc = 0.0
    for pid in pids:
        d = per[pid]
        calls = sum(d["calls"])
        total_calls += calls
        total_wall += sum(d["wall_ms"])
        total_gc += d["gc_s"]
        all_vals += d["per_call_ms"]
        all_cpu += d["cpu_per_call_ms"]
        out["protocols"][pid] = {
            "calls_per_run": median(d["calls"]),
            "runs": len(d["per_call_ms"]),
            "p50_ms": median(d["per_call_ms"]),
            "p95_ms": percentile(d["per_call_ms"], 95),
            "mean_ms": sum(d["wall_ms"]) / max(calls, 1),
            "cpu_p50_ms": median(d["cpu_per_call_ms"]),
            "wall_p50_ms": median(d["wall_ms"]),
            "stub_us_per_call": d["stub_s"] * 1e6 / max(calls, 1),
            "gc_us_per_call": d["gc_s"] * 1e6 / max(calls, 1),
            "round_p50_ms": d["rounds"],
            "statuses": dict(d["statuses"]),
            "per_call_ms": d["per_call_ms"],
        }
    out["overall"] = {
        "runs": len(all_vals),
        "calls": int(total_calls),
        "p50_ms": median(all_vals),
        "p95_ms": percentile(all_vals, 95),
        "mean_ms": total_wall / max(total_calls, 1),
        "cpu_p50_ms": median(all_cpu),
        "gc_us_per_call": total_gc * 1e6 / max(total_calls, 1),
        "gc_collections": sum(d["gc_n"] for d in per.values()),
        "round_p50_ms": [median(v) for v in round_pooled],
        "round_p95_ms": [percentile(v, 95) for v in round_pooled],
    }
    out["met"] = out["overall"]["p50_ms"] <= OVERHEAD_GOAL_MS
    return out
