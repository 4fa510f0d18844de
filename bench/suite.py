"""The benchmark suite: settings (full / quick) and one function that runs the selected sections."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

SECTIONS = ("overhead", "critical-path", "startup")


@dataclass(frozen=True)
class Settings:
    name: str
    overhead_rounds: int
    overhead_runs: int
    overhead_warmup: int
    profile_runs: int
    latency_s: float
    cp_rounds: int
    cp_profiles: tuple[str, ...] | None  # None: every loaded profile
    cp_protocols: tuple[str, ...] | None  # None: every loaded protocol
    concurrencies: tuple[int, ...]
    startup_rounds: int
    startup_warmup: int
    importtime_runs: int

    @classmethod
    def full(cls) -> Settings:
        return cls(
            name="full",
            overhead_rounds=5,
            overhead_runs=60,
            overhead_warmup=10,
            profile_runs=30,
            latency_s=0.05,
            cp_rounds=5,
            cp_profiles=None,
            cp_protocols=None,
            concurrencies=(64, 8),
            startup_rounds=20,
            startup_warmup=3,
            importtime_runs=5,
        )

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            name="quick",
            overhead_rounds=1,
            overhead_runs=5,
            overhead_warmup=1,
            profile_runs=3,
            latency_s=0.01,
            cp_rounds=1,
            cp_profiles=("balanced",),
            cp_protocols=(),
            concurrencies=(64, 8),
            startup_rounds=4,
            startup_warmup=1,
            importtime_runs=1,
        )


def _stderr(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run_suite(
    settings: Settings,
    sections: tuple[str, ...] = SECTIONS,
    *,
    profiler: str = "auto",
    command: str = "python -m bench",
    progress: Callable[[str], None] = _stderr,
) -> dict[str, Any]:
    """Run the selected sections and return every result as one JSON-serialisable dict."""
    from bench.engine_bench import bench_critical_path, bench_overhead, hotspot_microbench, profile_overhead
    from bench.report import machine_info
    from bench.startup_bench import bench_startup, import_times
    from reasonkit.protocol.loader import load_registry

    t0 = time.perf_counter()
    res: dict[str, Any] = {"machine": machine_info(), "setting": settings.name, "settings": asdict(settings), "command": command, "sections": list(sections)}
    registry = load_registry()
    if registry.problems:
        raise SystemExit("bench: the built-in protocols do not load: " + "; ".join(str(p) for p in registry.problems))
    if "overhead" in sections:
        progress("overhead: zero-latency provider, every protocol")
        res["overhead"] = bench_overhead(
            registry, rounds=settings.overhead_rounds, runs=settings.overhead_runs, warmup=settings.overhead_warmup, progress=progress
        )
        if profiler != "none":
            progress(f"overhead: profiling ({profiler})")
            res["profile"] = profile_overhead(registry, runs=settings.profile_runs, profiler=profiler)
        progress("overhead: direct timings of the hot spots")
        res["hotspots"] = hotspot_microbench(registry)
    if "critical-path" in sections:
        progress(f"critical path: {settings.latency_s * 1000:g} ms per call")
        res["critical_path"] = bench_critical_path(
            registry,
            profiles=None if settings.cp_profiles is None else list(settings.cp_profiles),
            protocols=None if settings.cp_protocols is None else list(settings.cp_protocols),
            latency=settings.latency_s,
            rounds=settings.cp_rounds,
            concurrencies=settings.concurrencies,
            progress=progress,
        )
    if "startup" in sections:
        progress("startup: rk --version vs python -c pass")
        res["startup"] = bench_startup(settings.startup_rounds, settings.startup_warmup, progress=progress)
        res["importtime"] = import_times("reasonkit.cli", runs=settings.importtime_runs)
    res["elapsed_s"] = time.perf_counter() - t0
    return res
