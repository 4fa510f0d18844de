"""Section 3b: profile and protocol wall time against the critical path, with a provider whose
every call takes a fixed latency. The critical path is computed from each run's own trace, in
*layers* (LLM calls that must happen one after another)."""

from __future__ import annotations

import gc
import math
import time
from collections import Counter
from typing import Any

import anyio

from bench.common import Progress, quiet
from bench.engine_bench.workload import BenchProvider, count_calls, run_target
from bench.stats import median
from reasonkit.engine import Engine
from reasonkit.engine.result import EntryResult, RunResult, StepTrace
from reasonkit.protocol.dependencies import chain_dependencies, effective_deps
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import Protocol

CRITICAL_PATH_GOAL = 1.10


def _sample_index(purpose: str) -> int:
    """CallTrace.purpose: 'main' | 'sample N' | 'repair' | 'repair of sample N' -> N (1 for main)."""
    tail = purpose.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 1


def instance_layers(trace: StepTrace, slots: int | None = None) -> int:
    """Sequential calls in one step instance: samples run side by side (in waves of `slots` when the
    limiter has fewer slots than samples); a repair follows its sample."""
    per_sample = Counter(_sample_index(c.purpose) for c in trace.calls)
    longest = max(per_sample.values(), default=0)
    return longest * (math.ceil(len(per_sample) / slots) if slots and per_sample else 1)


def step_layers(trace: StepTrace, slots: int | None = None) -> int:
    """for_each items run side by side (in waves of `slots`): the slowest item counts."""
    if trace.items:
        ran = [i for i in trace.items if i.calls]
        longest = max((instance_layers(i, slots) for i in ran), default=0)
        return longest * (math.ceil(len(ran) / slots) if slots and ran else 1)
    return instance_layers(trace, slots)


def entry_layers(proto: Protocol, entry_result: EntryResult, slots: int | None = None) -> int:
    """Longest chain of dependent calls through the protocol's step graph, from the trace."""
    deps = effective_deps(proto)
    traces = {t.step_id: t for t in entry_result.steps}
    finish: dict[str, int] = {}

    def fin(sid: str) -> int:
        if sid not in finish:
            trace = traces.get(sid)
            own = step_layers(trace, slots) if trace is not None else 0
            finish[sid] = max((fin(d) for d in deps.get(sid, [])), default=0) + own
        return finish[sid]

    return max((fin(s.id) for s in proto.steps), default=0)


def critical_path(registry: Registry, res: RunResult, slots: int | None = None) -> dict[str, Any]:
    """Critical path of a finished run in layers (sequential LLM calls), with each entry's span.
    With `slots`, parallel items and samples beyond the limiter's slots take extra waves (a lower
    bound: other steps competing for the same slots at the same time are not modelled)."""
    if res.kind == "protocol":
        entry_result = res.entries[0]
        n = entry_layers(registry.protocol(entry_result.protocol), entry_result, slots)
        return {
            "layers": n,
            "entries": {
                entry_result.entry: {"start": 0, "layers": n, "finish": n, "status": entry_result.status}
            },
        }
    prof = registry.profile(res.name)
    deps = chain_dependencies(prof)
    by_id = {e.entry: e for e in res.entries}
    spans: dict[str, dict[str, Any]] = {}
    for entry in prof.chain:
        entry_result = by_id[entry.entry_id]
        start = max((spans[d]["finish"] for d in deps[entry.entry_id]), default=0)
        own = (
            entry_layers(registry.protocol(entry_result.protocol), entry_result, slots)
            if entry_result.status != "skipped"
            else 0
        )
        spans[entry.entry_id] = {
            "start": start,
            "layers": own,
            "finish": start + own,
            "status": entry_result.status,
        }
    return {"layers": max((s["finish"] for s in spans.values()), default=0), "entries": spans}


def bench_critical_path(
    registry: Registry,
    profiles: list[str] | None = None,
    protocols: list[str] | None = None,
    *,
    latency: float = 0.05,
    rounds: int = 5,
    concurrencies: tuple[int, ...] = (64, 8),
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Run each target once per round and concurrency; ratio = wall / (critical-path layers x latency)."""
    targets = [("profile", p) for p in (sorted(registry.profiles) if profiles is None else profiles)]
    targets += [("protocol", p) for p in (sorted(registry.protocols) if protocols is None else protocols)]
    rows: dict[str, dict[str, Any]] = {}
    for kind, name in targets:
        for conc in concurrencies:
            rows[f"{kind}:{name}@{conc}"] = {
                "kind": kind,
                "name": name,
                "max_concurrency": conc,
                "wall_ms": [],
                "ratio": [],
                "ratio_measured": [],
                "ratio_limited": [],
                "layers": [],
                "layers_limited": [],
                "calls": [],
                "peak_in_flight": [],
                "call_ms": [],
                "entries": None,
                "statuses": Counter(),
            }

    async def main() -> None:
        warm = Engine(registry, BenchProvider(0.0))
        for kind, name in targets:
            await run_target(warm, registry, kind, name)
        engines: dict[int, tuple[Engine, BenchProvider]] = {}
        for c in concurrencies:
            provider = BenchProvider(latency)
            engines[c] = (Engine(registry, provider, max_concurrency=c), provider)
        for r in range(rounds):
            gc.collect()
            for kind, name in targets:
                for conc in concurrencies:
                    engine, provider = engines[conc]
                    provider.reset()
                    t0 = time.perf_counter()
                    res = await run_target(engine, registry, kind, name)
                    wall = time.perf_counter() - t0
                    cp = critical_path(registry, res)
                    limited = critical_path(registry, res, slots=conc)["layers"]
                    row = rows[f"{kind}:{name}@{conc}"]
                    cp_s = cp["layers"] * latency
                    row["wall_ms"].append(wall * 1000)
                    row["ratio"].append(wall / cp_s if cp_s else float("nan"))
                    row["layers"].append(cp["layers"])
                    row["layers_limited"].append(limited)
                    row["ratio_limited"].append(wall / (limited * latency) if limited else float("nan"))
                    row["calls"].append(provider.calls)
                    row["peak_in_flight"].append(provider.peak_in_flight)
                    row["call_ms"] += [d * 1000 for d in provider.durations]
                    mean_call = sum(provider.durations) / max(len(provider.durations), 1)
                    row["ratio_measured"].append(
                        wall / (cp["layers"] * mean_call) if cp["layers"] and mean_call else float("nan")
                    )
                    row["statuses"][res.status] += 1
                    row["trace_calls_match"] = (
                        row.get("trace_calls_match", True) and count_calls(res) == provider.calls
                    )
                    row["entries"] = {
                        k: {"status": v["status"], "start": v["start"], "layers": v["layers"]}
                        for k, v in cp["entries"].items()
                    }
            progress(f"critical path: round {r + 1}/{rounds} done")

    anyio.run(main, backend="asyncio")

    out_rows = []
    for row in rows.values():
        layers = Counter(row["layers"]).most_common(1)[0][0]
        out_rows.append(
            {
                "kind": row["kind"],
                "name": row["name"],
                "max_concurrency": row["max_concurrency"],
                "calls_per_run": median(row["calls"]),
                "layers": layers,
                "layers_constant": len(set(row["layers"])) == 1,
                "critical_path_ms": layers * latency * 1000,
                "wall_p50_ms": median(row["wall_ms"]),
                "ratio_p50": median(row["ratio"]),
                "ratio_min": min(row["ratio"]),
                "ratio_max": max(row["ratio"]),
                "ratios": row["ratio"],
                "ratio_measured_p50": median(row["ratio_measured"]),
                "layers_limited": Counter(row["layers_limited"]).most_common(1)[0][0],
                "ratio_limited_p50": median(row["ratio_limited"]),
                "wall_ms": row["wall_ms"],
                "peak_in_flight": max(row["peak_in_flight"]),
                "mean_call_ms": sum(row["call_ms"]) / max(len(row["call_ms"]), 1),
                "statuses": dict(row["statuses"]),
                "trace_calls_match": row.get("trace_calls_match", False),
                "entries": row["entries"],
                "met": median(row["ratio"]) <= CRITICAL_PATH_GOAL,
            }
        )
    return {
        "goal_ratio": CRITICAL_PATH_GOAL,
        "settings": {"latency_ms": latency * 1000, "rounds": rounds, "concurrencies": list(concurrencies)},
        "rows": out_rows,
    }
