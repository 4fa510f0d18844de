"""Section 3a, direct timings: what the hot spots the profile points at cost per LLM call, without
a profiler."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio

from bench.engine_bench.workload import BenchProvider, protocol_inputs
from reasonkit.engine import Engine
from reasonkit.engine.parsing import relaxed_schema, schema_errors
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import Step
from reasonkit.protocol.template import Template
from reasonkit.providers.schema_fill import fill_schema


def _engine_sample(
    registry: Registry, pids: list[str], runs: int
) -> tuple[dict[tuple[str, str], int], float]:
    """LLM calls per (protocol, step) in one run, and the mean engine overhead per call in µs over
    `runs` zero-latency runs of each protocol (the yardstick for the direct timings)."""
    weights: dict[tuple[str, str], int] = {}
    totals = {"wall": 0.0, "calls": 0}

    async def main() -> None:
        provider = BenchProvider(0.0)
        engine = Engine(registry, provider)
        for pid in pids:
            inputs = protocol_inputs(registry.protocol(pid))
            res = await engine.run_protocol(pid, inputs)
            for step_trace in res.entries[0].steps:
                item_calls = sum(len(item.calls) for item in step_trace.items)
                weights[(pid, step_trace.step_id)] = len(step_trace.calls) + item_calls
            c0 = provider.calls
            t0 = time.perf_counter()
            for _ in range(runs):
                await engine.run_protocol(pid, inputs)
            totals["wall"] += time.perf_counter() - t0
            totals["calls"] += provider.calls - c0

    anyio.run(main, backend="asyncio")
    return weights, totals["wall"] * 1e6 / max(totals["calls"], 1)


def _time_us(fn: Callable[[], Any], min_time: float = 0.02) -> float:
    fn()
    n, t = 0, 0.0
    t0 = time.perf_counter()
    while t < min_time:
        fn()
        n += 1
        t = time.perf_counter() - t0
    return t * 1e6 / n


def hotspot_microbench(
    registry: Registry, protocols: list[str] | None = None, min_time: float = 0.02, runs: int = 10
) -> dict[str, Any]:
    """Per LLM call, what the engine spends on (a) `schema_errors` (reasonkit/engine/parsing.py),
    of which (b) building the `Draft202012Validator`, and (c) parsing the step's prompt and system
    templates (`Template(...)` in `Engine._run_instance`): call-weighted means over the steps, and
    their share of the mean engine overhead per call, measured right before and after (this machine's
    speed drifts, so the yardstick is taken at the same time as the timings)."""
    from jsonschema import Draft202012Validator

    pids = list(protocols or sorted(registry.protocols))
    weights, engine_before = _engine_sample(registry, pids, runs)
    rows: list[dict[str, Any]] = []
    for pid in pids:
        for step in registry.protocol(pid).steps:
            w = weights.get((pid, step.id), 0)
            if not w:
                continue
            obj = fill_schema(step.output)
            schema = relaxed_schema(step)  # what `Engine._parse` validates against

            def validate(sch: dict[str, Any] = schema, o: dict[str, Any] = obj) -> Any:
                return schema_errors(dict(o), sch)

            def build(s: Step = step) -> Any:
                return Draft202012Validator(s.output)

            def parse(s: Step = step) -> Any:
                return Template(s.prompt), Template(s.system or "")

            rows.append(
                {
                    "protocol": pid,
                    "step": step.id,
                    "calls": w,
                    "schema_errors_us": _time_us(validate, min_time),
                    "validator_build_us": _time_us(build, min_time),
                    "template_parse_us": _time_us(parse, min_time),
                }
            )
    total = sum(r["calls"] for r in rows) or 1

    def wmean(key: str) -> float:
        return sum(r[key] * r["calls"] for r in rows) / total

    _, engine_after = _engine_sample(registry, pids, runs)
    engine_us = (engine_before + engine_after) / 2
    per_call = {k: wmean(k) for k in ("schema_errors_us", "validator_build_us", "template_parse_us")}
    return {
        "steps": rows,
        "engine_us_per_call": engine_us,
        "engine_us_per_call_before_after": [engine_before, engine_after],
        "per_call": per_call,
        "share_pct": {k: 100 * v / engine_us for k, v in per_call.items()},
    }
