"""Section 3a, where the time goes: the zero-latency workload under a profiler (pyinstrument or
cProfile), summarised by area and by ReasonKit function."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

import reasonkit
import reasonkit.providers.fake
from bench.engine_bench.workload import BenchProvider, protocol_inputs
from reasonkit.engine import Engine
from reasonkit.protocol.loader import Registry

# Per-run / per-step driver coroutines: their inclusive time is (nearly) everything, so they are left
# out of the function table, which is meant to name the places where the time is actually spent.
_DRIVERS = frozenset(
    {
        "run_protocol",
        "run_profile",
        "_execute",
        "body",
        "_run_chain",
        "run_one",
        "_run_entry",
        "run_step",
        "_run_step",
        "run_item",
        "_run_instance",
        "one",
        "_sample",
        "main",
    }
)


_PKG_DIR = str(Path(reasonkit.__file__).resolve().parent) + "/"
_BENCH_DIR = str(Path(__file__).resolve().parent.parent) + "/"
_FAKE_PROVIDER = str(Path(reasonkit.providers.fake.__file__).resolve())
_JSONSCHEMA_PKGS = ("jsonschema", "referencing", "rpds", "jsonschema_specifications", "attr", "attrs")


def _reasonkit_module(path: str) -> str | None:
    p = path.replace("\\", "/")
    if not p.startswith(_PKG_DIR):
        return None
    return "reasonkit." + p[len(_PKG_DIR) :].removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def _area(path: str) -> str:
    """Where a profiled function lives, grouped into areas a reader can act on."""
    p = path.replace("\\", "/")
    if p.startswith(_BENCH_DIR) or p == _FAKE_PROVIDER:
        return "benchmark provider stub (bench, reasonkit.providers.fake)"
    mod = _reasonkit_module(p)
    if mod:
        return mod
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
        if mod is None or func in _DRIVERS or mod == "reasonkit.providers.fake":
            continue
        rel = file.replace("\\", "/")[len(_PKG_DIR) :]
        funcs.append(
            {"function": f"{mod}.{func}", "location": f"reasonkit/{rel}:{line}", "inclusive_s": incl}
        )
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
