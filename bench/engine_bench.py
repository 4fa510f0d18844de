"""In-process engine benchmarks.

- `bench_overhead`: orchestration overhead per LLM call, with a provider that answers at once.
- `profile_overhead`: the same workload under a profiler, summarised by area and by function.
- `hotspot_microbench`: direct per-call timings of the hot spots the profile points at.
- `bench_critical_path`: profile (and protocol) wall time against the critical path, with a provider
  whose every call takes a fixed latency.

Every provider here is `BenchProvider`: no network, no SDK, replies built from the request's JSON
schema by `tests.fakes.fake_llm.fill_schema` (minimal valid objects; arrays get `minItems` items,
at least one).
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

import reasonkit
from bench.stats import median, percentile
from reasonkit.engine import Engine
from reasonkit.engine import runner as runner_module
from reasonkit.engine.parsing import schema_errors
from reasonkit.engine.result import EntryResult, RunResult, StepTrace
from reasonkit.protocol.loader import Registry, effective_deps
from reasonkit.protocol.models import Profile, Protocol, Step
from reasonkit.protocol.template import Template
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider, Usage
from tests.fakes import fake_llm
from tests.fakes.fake_llm import fill_schema

OVERHEAD_GOAL_MS = 0.5
CRITICAL_PATH_GOAL = 1.10

# A typical step: ~1.8k prompt tokens, ~600 output tokens.
USAGE_INPUT, USAGE_OUTPUT = 1800, 600

QUERY = (
    "Should a 12-person SaaS startup rewrite its Python billing service in Rust to cut cloud costs, "
    "given two backend engineers with no Rust experience and a product launch in four months?"
)
CONTEXT = (
    "The billing service handles about 40 requests per second at peak and costs roughly $3,000 a month "
    "to run. Most of its latency is spent waiting on Postgres and the payment provider. The team has "
    "shipped Python for five years; nobody has run Rust in production."
)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


# --------------------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------------------
class BenchProvider(Provider):
    """In-process provider: replies with a minimal valid object for the request's schema.

    latency == 0: returns without awaiting anything (pure engine cost); latency > 0: awaits
    `anyio.sleep(latency)` per call, like a model that always takes that long.
    The reply object is built once per schema and cached; each call gets a shallow copy
    (the engine copies and edits only the top level)."""

    name = "bench"

    def __init__(self, latency: float = 0.0, model: str = "bench-model"):
        self.model = model
        self.latency = latency
        # id(schema) -> (schema, object, text); the schema is kept so its id cannot be reused.
        self._cache: dict[int, tuple[dict[str, Any] | None, dict[str, Any], str]] = {}
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.stub_seconds = 0.0  # time inside complete() before the latency sleep
        self.durations: list[float] = []  # per call, start to end (latency > 0 only)

    def _reply(self, schema: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
        key = id(schema)
        hit = self._cache.get(key)
        if hit is None or hit[0] is not schema:
            obj = fill_schema(schema) if schema else {"answer": "ok", "confidence": 0.8}
            hit = (schema, obj, json.dumps(obj))
            self._cache[key] = hit
        return hit[1], hit[2]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        t0 = time.perf_counter()
        self.calls += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            obj, text = self._reply(request.schema)
            resp = LLMResponse(
                text=text,
                parsed=dict(obj),
                stop_reason="end",
                usage=Usage(input=USAGE_INPUT, output=USAGE_OUTPUT),
                provider=self.name,
                model=self.model,
                latency_ms=self.latency * 1000,
            )
            self.stub_seconds += time.perf_counter() - t0
            if self.latency > 0:
                await anyio.sleep(self.latency)
                self.durations.append(time.perf_counter() - t0)
            return resp
        finally:
            self.in_flight -= 1


def protocol_inputs(proto: Protocol) -> dict[str, str]:
    """Required string inputs get the sample question; `context` gets the sample background."""
    out: dict[str, str] = {}
    for name, spec in proto.inputs.items():
        if spec.required:
            out[name] = QUERY
        elif name == "context":
            out[name] = CONTEXT
    return out


PROFILE_INPUTS = {"query": QUERY, "context": CONTEXT}


def count_calls(res: RunResult) -> int:
    return sum(len(s.calls) + sum(len(i.calls) for i in s.items) for e in res.entries for s in e.steps)


# --------------------------------------------------------------------------------------------------
# 1. Orchestration overhead per LLM call (zero latency)
# --------------------------------------------------------------------------------------------------
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
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Run each protocol `runs` times per round; per run, overhead = wall time / LLM calls.
    Process CPU time per call and the garbage collector's share are recorded alongside."""
    pids = list(protocols or sorted(registry.protocols))
    inputs = {pid: protocol_inputs(registry.protocol(pid)) for pid in pids}
    per: dict[str, dict[str, Any]] = {
        pid: {"per_call_ms": [], "cpu_per_call_ms": [], "wall_ms": [], "calls": [], "stub_s": 0.0, "gc_s": 0.0, "gc_n": 0, "statuses": Counter(), "rounds": []}
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
        "settings": {"rounds": rounds, "runs_per_round": runs, "warmup": warmup, "max_concurrency": max_concurrency},
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


# --------------------------------------------------------------------------------------------------
# 1b. Where the time goes: a profile of the same workload, and direct timings of the hot spots
# --------------------------------------------------------------------------------------------------
# Per-run / per-step driver coroutines: their inclusive time is (nearly) everything, so they are left
# out of the function table, which is meant to name the places where the time is actually spent.
_DRIVERS = frozenset(
    {"run_protocol", "run_profile", "_execute", "body", "_run_chain", "run_one", "_run_entry", "run_step", "_run_step", "run_item", "_run_instance", "one", "_sample", "main"}
)


_PKG_DIR = str(Path(reasonkit.__file__).resolve().parent) + "/"
_BENCH_DIRS = (str(Path(__file__).resolve().parent) + "/", str(Path(fake_llm.__file__).resolve().parent) + "/")
_JSONSCHEMA_PKGS = ("jsonschema", "referencing", "rpds", "jsonschema_specifications", "attr", "attrs")


def _reasonkit_module(path: str) -> str | None:
    p = path.replace("\\", "/")
    if not p.startswith(_PKG_DIR):
        return None
    return "reasonkit." + p[len(_PKG_DIR) :].removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def _area(path: str) -> str:
    """Where a profiled function lives, grouped into areas a reader can act on."""
    p = path.replace("\\", "/")
    mod = _reasonkit_module(p)
    if mod:
        return mod
    if p.startswith(_BENCH_DIRS):
        return "benchmark provider stub (bench, tests.fakes)"
    if "/site-packages/" in p:
        pkg = p.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        if pkg in _JSONSCHEMA_PKGS:
            return "jsonschema validation (jsonschema, referencing, attrs)"
        if pkg in ("pydantic", "pydantic_core"):
            return "pydantic models (trace objects)"
        if pkg in ("anyio", "sniffio"):
            return "event loop and tasks (anyio, asyncio)"
        return f"other package: {pkg}"
    if "attrs generated" in p:  # attrs-generated methods of jsonschema's validator classes
        return "jsonschema validation (jsonschema, referencing, attrs)"
    if "/asyncio/" in p:
        return "event loop and tasks (anyio, asyncio)"
    if p.endswith(("/json/__init__.py", "/json/encoder.py", "/json/decoder.py")):
        return "stdlib json (prompt rendering of step outputs)"
    if p in ("~", "") or p.startswith("<"):
        return "builtins (C functions)"
    return "other stdlib"


def _fold_cprofile(prof: Any) -> tuple[dict[tuple[str, int, str], list[float]], float]:
    """{(file, line, function): [self seconds, inclusive seconds]} and the total; C functions' self time
    is moved to their Python callers, as a sampling profiler would show it."""
    import pstats

    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    table: dict[tuple[str, int, str], list[float]] = {}
    total = 0.0
    for key, (_cc, _nc, tt, ct, callers) in stats.items():
        total += tt
        file, line, func = key
        if file == "~":  # built-in: give its time to the callers (the rest, if any, stays "builtins")
            given = 0.0
            for ckey, cval in callers.items():
                table.setdefault(ckey, [0.0, 0.0])[0] += cval[2]
                given += cval[2]
            if tt - given > 0:
                table.setdefault(key, [0.0, 0.0])[0] += tt - given
            continue
        row = table.setdefault(key, [0.0, 0.0])
        row[0] += tt
        row[1] = max(row[1], ct)
    return table, total


def _fold_pyinstrument(session: Any) -> tuple[dict[tuple[str, int, str], list[float]], float]:
    root = session.root_frame()
    table: dict[tuple[str, int, str], list[float]] = {}
    if root is None:
        return table, 0.0

    def walk(frame: Any, active: Counter[tuple[str, int, str]]) -> None:
        if frame.is_synthetic:
            return
        key = (frame.file_path or "", frame.line_no or 0, frame.function or "")
        row = table.setdefault(key, [0.0, 0.0])
        row[0] += frame.total_self_time
        if not active[key]:  # recursion: count the outermost frame only
            row[1] += frame.time
        active[key] += 1
        for child in frame.children:
            walk(child, active)
        active[key] -= 1

    walk(root, Counter())
    return table, root.time


def profile_overhead(
    registry: Registry,
    protocols: list[str] | None = None,
    *,
    runs: int = 30,
    profiler: str = "auto",
    max_concurrency: int = 8,
    top: int = 10,
) -> dict[str, Any]:
    """Run every protocol `runs` times under a profiler (pyinstrument if installed, else cProfile)
    and summarise self time by area and inclusive time by reasonkit function."""
    pids = list(protocols or sorted(registry.protocols))
    inputs = {pid: protocol_inputs(registry.protocol(pid)) for pid in pids}
    if profiler == "auto":
        try:
            import pyinstrument  # noqa: F401

            profiler = "pyinstrument"
        except ImportError:
            profiler = "cprofile"
    provider = BenchProvider(0.0)
    engine = Engine(registry, provider, max_concurrency=max_concurrency)

    async def workload() -> None:
        for pid in pids:
            for _ in range(runs):
                await engine.run_protocol(pid, inputs[pid])

    async def warm() -> None:
        for pid in pids:
            await engine.run_protocol(pid, inputs[pid])

    anyio.run(warm, backend="asyncio")
    provider.reset()
    t0 = time.perf_counter()
    if profiler == "pyinstrument":
        from pyinstrument import Profiler

        p = Profiler(interval=0.0002, async_mode="disabled")
        p.start()
        anyio.run(workload, backend="asyncio")
        p.stop()
        table, total = _fold_pyinstrument(p.last_session)
    elif profiler == "cprofile":
        import cProfile

        cp = cProfile.Profile()
        cp.enable()
        anyio.run(workload, backend="asyncio")
        cp.disable()
        table, total = _fold_cprofile(cp)
    else:
        raise ValueError(f"unknown profiler {profiler!r} (auto, pyinstrument, cprofile)")
    wall = time.perf_counter() - t0
    calls = provider.calls
    total = total or 1e-9

    areas: dict[str, float] = {}
    for (file, _line, _func), (self_s, _incl) in table.items():
        areas[_area(file)] = areas.get(_area(file), 0.0) + self_s
    funcs: list[dict[str, Any]] = []
    for (file, line, func), (_self_s, incl) in table.items():
        mod = _reasonkit_module(file)
        if mod is None or func in _DRIVERS:
            continue
        rel = file.replace("\\", "/")[len(_PKG_DIR) :]
        funcs.append({"function": f"{mod}.{func}", "location": f"reasonkit/{rel}:{line}", "inclusive_s": incl})
    funcs.sort(key=lambda f: -f["inclusive_s"])
    for f in funcs:
        f["pct"] = 100 * f["inclusive_s"] / total
        f["profiled_us_per_call"] = f["inclusive_s"] * 1e6 / max(calls, 1)
    return {
        "profiler": profiler,
        "runs_per_protocol": runs,
        "calls": calls,
        "wall_s": wall,
        "profiled_s": total,
        "areas": [
            {"area": a, "self_s": s, "pct": 100 * s / total, "profiled_us_per_call": s * 1e6 / max(calls, 1)}
            for a, s in sorted(areas.items(), key=lambda kv: -kv[1])
        ],
        "functions": funcs[:top],
    }


def _engine_sample(registry: Registry, pids: list[str], runs: int) -> tuple[dict[tuple[str, str], int], float]:
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
            for tr in res.entries[0].steps:
                weights[(pid, tr.step_id)] = len(tr.calls) + sum(len(i.calls) for i in tr.items)
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


def _validated_schema(step: Step) -> dict[str, Any]:
    """The schema `Engine._parse` validates replies against: the step's output schema, relaxed by the
    runner's `_relaxed_schema` where the runner has one (item counts are checked separately)."""
    relax = getattr(runner_module, "_relaxed_schema", None)
    return relax(step) if callable(relax) else step.output


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
            schema = _validated_schema(step)

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


# --------------------------------------------------------------------------------------------------
# 2. Wall time vs critical path (fixed latency)
# --------------------------------------------------------------------------------------------------
def _sample_index(purpose: str) -> int:
    """CallTrace.purpose: 'main' | 'sample N' | 'repair' | 'repair of sample N' -> N (1 for main)."""
    tail = purpose.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 1


def instance_layers(tr: StepTrace, slots: int | None = None) -> int:
    """Sequential calls in one step instance: samples run side by side (in waves of `slots` when the
    limiter has fewer slots than samples); a repair follows its sample."""
    per_sample = Counter(_sample_index(c.purpose) for c in tr.calls)
    longest = max(per_sample.values(), default=0)
    return longest * (math.ceil(len(per_sample) / slots) if slots and per_sample else 1)


def step_layers(tr: StepTrace, slots: int | None = None) -> int:
    """for_each items run side by side (in waves of `slots`): the slowest item counts."""
    if tr.items:
        ran = [i for i in tr.items if i.calls]
        longest = max((instance_layers(i, slots) for i in ran), default=0)
        return longest * (math.ceil(len(ran) / slots) if slots and ran else 1)
    return instance_layers(tr, slots)


def entry_layers(proto: Protocol, er: EntryResult, slots: int | None = None) -> int:
    """Longest chain of dependent calls through the protocol's step graph, from the trace."""
    deps = effective_deps(proto)
    traces = {t.step_id: t for t in er.steps}
    finish: dict[str, int] = {}

    def fin(sid: str) -> int:
        if sid not in finish:
            tr = traces.get(sid)
            own = step_layers(tr, slots) if tr is not None else 0
            finish[sid] = max((fin(d) for d in deps.get(sid, [])), default=0) + own
        return finish[sid]

    return max((fin(s.id) for s in proto.steps), default=0)


def chain_deps(prof: Profile) -> dict[str, list[str]]:
    """Entry -> entries it waits for: those its input templates name as results.<id>; an entry with
    `when` waits for every earlier entry (it needs the confidence so far)."""
    order = [e.entry_id for e in prof.chain]
    out: dict[str, list[str]] = {}
    for i, entry in enumerate(prof.chain):
        if entry.when is not None:
            out[entry.entry_id] = order[:i]
            continue
        refs = set()
        for tmpl in entry.inputs.values():
            for path in Template(tmpl).paths():
                parts = path.split(".")
                if parts[0] == "results" and len(parts) > 1:
                    refs.add(parts[1])
        out[entry.entry_id] = [o for o in order[:i] if o in refs]
    return out


def critical_path(registry: Registry, res: RunResult, slots: int | None = None) -> dict[str, Any]:
    """Critical path of a finished run in layers (sequential LLM calls), with each entry's span.
    With `slots`, parallel items and samples beyond the limiter's slots take extra waves (a lower
    bound: other steps competing for the same slots at the same time are not modelled)."""
    if res.kind == "protocol":
        er = res.entries[0]
        n = entry_layers(registry.protocol(er.protocol), er, slots)
        return {"layers": n, "entries": {er.entry: {"start": 0, "layers": n, "finish": n, "status": er.status}}}
    prof = registry.profile(res.name)
    deps = chain_deps(prof)
    by_id = {e.entry: e for e in res.entries}
    spans: dict[str, dict[str, Any]] = {}
    for entry in prof.chain:
        er = by_id[entry.entry_id]
        start = max((spans[d]["finish"] for d in deps[entry.entry_id]), default=0)
        own = entry_layers(registry.protocol(er.protocol), er, slots) if er.status != "skipped" else 0
        spans[entry.entry_id] = {"start": start, "layers": own, "finish": start + own, "status": er.status}
    return {"layers": max((s["finish"] for s in spans.values()), default=0), "entries": spans}


def bench_critical_path(
    registry: Registry,
    profiles: list[str] | None = None,
    protocols: list[str] | None = None,
    *,
    latency: float = 0.05,
    rounds: int = 5,
    concurrencies: tuple[int, ...] = (64, 8),
    progress: Progress = _quiet,
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

    async def run(engine: Engine, kind: str, name: str) -> RunResult:
        if kind == "profile":
            return await engine.run_profile(name, PROFILE_INPUTS)
        return await engine.run_protocol(name, protocol_inputs(registry.protocol(name)))

    async def main() -> None:
        warm = Engine(registry, BenchProvider(0.0))
        for kind, name in targets:
            await run(warm, kind, name)
        engines: dict[int, tuple[Engine, BenchProvider]] = {}
        for c in concurrencies:
            prov = BenchProvider(latency)
            engines[c] = (Engine(registry, prov, max_concurrency=c), prov)
        for r in range(rounds):
            gc.collect()
            for kind, name in targets:
                for conc in concurrencies:
                    engine, provider = engines[conc]
                    provider.reset()
                    t0 = time.perf_counter()
                    res = await run(engine, kind, name)
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
                    row["ratio_measured"].append(wall / (cp["layers"] * mean_call) if cp["layers"] and mean_call else float("nan"))
                    row["statuses"][res.status] += 1
                    row["trace_calls_match"] = row.get("trace_calls_match", True) and count_calls(res) == provider.calls
                    row["entries"] = {k: {"status": v["status"], "start": v["start"], "layers": v["layers"]} for k, v in cp["entries"].items()}
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


# --------------------------------------------------------------------------------------------------
# 3. Memory per concurrent run
# --------------------------------------------------------------------------------------------------
def _rss_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def bench_memory(
    registry: Registry,
    targets: list[tuple[str, str]] | None = None,
    *,
    concurrencies: tuple[int, ...] = (1, 10, 100),
    latency: float = 0.05,
    max_concurrency: int = 16,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """N runs of a target at once (one Engine per run, as the MCP server makes one per tool call;
    one shared fixed-latency provider, so all N are alive together). Per run: the tracemalloc peak
    of Python allocations above the baseline while they ran / N, what the N finished RunResults
    still hold (their traces) / N, and the process's RSS growth / N (VmHWM reset before each
    measurement; Linux only)."""
    import os
    import tracemalloc

    targets = targets or [("profile", "balanced"), ("protocol", "gigathink")]
    rows: list[dict[str, Any]] = []
    was_tracing = tracemalloc.is_tracing()

    async def run(engine: Engine, kind: str, name: str) -> RunResult:
        if kind == "profile":
            return await engine.run_profile(name, PROFILE_INPUTS)
        return await engine.run_protocol(name, protocol_inputs(registry.protocol(name)))

    async def batch(kind: str, name: str, n: int, provider: BenchProvider) -> list[RunResult]:
        results: list[RunResult] = []

        async def one() -> None:
            results.append(await run(Engine(registry, provider, max_concurrency=max_concurrency), kind, name))

        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
        return results

    try:
        for kind, name in targets:
            provider = BenchProvider(latency)
            anyio.run(batch, kind, name, 1, BenchProvider(0.0), backend="asyncio")  # warm caches outside the measurement
            for n in concurrencies:
                gc.collect()
                if not tracemalloc.is_tracing():
                    tracemalloc.start()
                base, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                try:
                    Path("/proc/self/clear_refs").write_text("5")
                    rss_ok = True
                except OSError:
                    rss_ok = False
                rss0 = _rss_kb("VmRSS")
                provider.reset()
                t0 = time.perf_counter()
                results = anyio.run(batch, kind, name, n, provider, backend="asyncio")
                wall = time.perf_counter() - t0
                current, peak = tracemalloc.get_traced_memory()
                hwm = _rss_kb("VmHWM") if rss_ok else None
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
                progress(f"memory: {kind} {name} x{n}: {rows[-1]['peak_kb_per_run']:.0f} KB per run (tracemalloc peak)")
    finally:
        if not was_tracing and tracemalloc.is_tracing():
            tracemalloc.stop()
    return {
        "settings": {"latency_ms": latency * 1000, "max_concurrency": max_concurrency, "concurrencies": list(concurrencies), "pid": os.getpid()},
        "rows": rows,
    }
