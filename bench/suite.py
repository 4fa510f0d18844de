"""The benchmark suite: settings (full / quick) and one function that runs the selected sections.

Sections, as in issue 6: provider (1, vs LiteLLM), mcp (2, vs the sequential-thinking server),
overhead / critical-path / memory (3, the engine), load (4, the HTTP server), startup (5); and, as
in issue 26: local (6, the embedded model against llama.cpp itself), store (7, SQLite vs
PostgreSQL), admission (8, refusals under a burst, worker processes), floors (9, server CPU per
call against the floors of its stack)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import Progress, load_avg, say

SECTIONS = (
    "provider",
    "mcp",
    "overhead",
    "critical-path",
    "memory",
    "load",
    "startup",
    "local",
    "store",
    "admission",
    "floors",
)


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
    # 1. provider layer
    provider_latencies: tuple[float, ...] = (0.0, 0.05)
    provider_rounds: int = 5
    provider_calls: int = 30
    provider_warmup: int = 10
    provider_concurrency: int = 50
    provider_conc_calls: int = 300
    fake_cost_calls: int = 50
    # 2. MCP stdio
    mcp_rounds: int = 10
    mcp_warm: int = 200
    mcp_raw_rounds: int = 3
    # 3. memory
    memory_concurrencies: tuple[int, ...] = (1, 10, 100)
    # 4. server under load
    load_calls: int = 200
    load_rounds: int = 3
    load_alone: int = 20
    load_fail_every: int = 10
    load_diagnostics: bool = True
    # 5. start-up
    serve_import_rounds: int = 10
    stdio_start_rounds: int = 5  # only when section 2 is not run
    server_profiles: bool = True
    # 6. the embedded model
    decode_tokens: int = 96
    decode_rounds: int = 3
    local_profiles: tuple[str, ...] = ("quick", "balanced")
    negotiation_calls: int = 200
    # 7. run store
    store_runs: int = 40
    store_steps: int = 12
    # 8. admission and workers
    admission_cap: int = 32
    admission_in_flight: int = 200
    admission_rounds: int = 3
    # 9. floors
    floors_calls: int = 200
    floors_rounds: int = 3

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
            concurrencies=(64, 16),
            startup_rounds=20,
            startup_warmup=3,
            importtime_runs=3,
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
            concurrencies=(64, 16),
            startup_rounds=4,
            startup_warmup=1,
            importtime_runs=1,
            provider_latencies=(0.0, 0.01),
            provider_rounds=1,
            provider_calls=5,
            provider_warmup=2,
            provider_concurrency=10,
            provider_conc_calls=40,
            fake_cost_calls=20,
            mcp_rounds=1,
            mcp_warm=10,
            mcp_raw_rounds=1,
            memory_concurrencies=(1, 3),
            load_calls=10,
            load_rounds=1,
            load_alone=3,
            load_diagnostics=False,
            serve_import_rounds=2,
            stdio_start_rounds=1,
            server_profiles=False,
            decode_tokens=8,
            decode_rounds=1,
            local_profiles=(),
            negotiation_calls=10,
            store_runs=4,
            store_steps=3,
            admission_cap=4,
            admission_in_flight=20,
            admission_rounds=1,
            floors_calls=10,
            floors_rounds=1,
        )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("mcp", "openai", "pydantic", "litellm", "matplotlib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def run_suite(
    settings: Settings,
    sections: tuple[str, ...] = SECTIONS,
    *,
    profiler: str = "auto",
    command: str = "python -m bench",
    install: bool = True,
    progress: Progress = say,
) -> dict[str, Any]:
    """Run the selected sections and return every result as one JSON-serialisable dict."""
    from bench.report import machine_info
    from bench.startup_bench import find_rk
    from reasonkit.protocol.loader import load_registry

    t0 = time.perf_counter()
    res: dict[str, Any] = {
        "machine": machine_info(),
        "setting": settings.name,
        "settings": asdict(settings),
        "command": command,
        "sections": list(sections),
        "environment": _versions(),
    }
    registry = load_registry()
    if registry.problems:
        raise SystemExit(
            "bench: the built-in protocols do not load: " + "; ".join(str(p) for p in registry.problems)
        )
    rk = find_rk(sys.executable)

    if "provider" in sections:
        from bench.provider_bench import bench_provider, fake_server_cost

        progress("provider: ReasonKit vs LiteLLM on the fake OpenAI server")
        res["provider"] = bench_provider(
            latencies=settings.provider_latencies,
            rounds=settings.provider_rounds,
            calls=settings.provider_calls,
            warmup=settings.provider_warmup,
            concurrency=settings.provider_concurrency,
            conc_calls=settings.provider_conc_calls,
            progress=progress,
        )
        progress("provider: the fake servers' own cost")
        res["fake_server_cost"] = fake_server_cost(
            n=settings.fake_cost_calls, rounds=3 if settings.name == "full" else 1
        )
    if "mcp" in sections:
        from bench.env import node_peer
        from bench.mcp_bench import bench_mcp, tools_list_profile

        if rk is None:
            res["mcp"] = {"error": "no `rk` executable found"}
        else:
            node = node_peer(progress, install=install)
            if "error" in node:
                progress(f"mcp: the Node peer is not available ({node['error']}); measuring ReasonKit alone")
            progress("mcp: stdio spawn to tools/list and warm round trips")
            res["mcp"] = bench_mcp(
                rk,
                node,
                rounds=settings.mcp_rounds,
                warm=settings.mcp_warm,
                raw_rounds=settings.mcp_raw_rounds,
                progress=progress,
                profile=settings.server_profiles,
            )
            res["mcp"]["tools_list"] = tools_list_profile(rk, calls=2000 if settings.name == "full" else 50)
    if "overhead" in sections:
        from bench.engine_bench import bench_overhead, hotspot_microbench, profile_overhead

        progress("overhead: zero-latency provider, every protocol")
        res["overhead"] = bench_overhead(
            registry,
            rounds=settings.overhead_rounds,
            runs=settings.overhead_runs,
            warmup=settings.overhead_warmup,
            progress=progress,
        )
        if profiler != "none":
            progress(f"overhead: profiling ({profiler})")
            res["profile"] = profile_overhead(registry, runs=settings.profile_runs, profiler=profiler)
        progress("overhead: direct timings of the hot spots")
        res["hotspots"] = hotspot_microbench(registry)
    if "critical-path" in sections:
        from bench.engine_bench import bench_critical_path

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
    if "memory" in sections:
        from bench.engine_bench import bench_memory

        progress("memory: concurrent runs")
        res["memory"] = bench_memory(
            registry,
            concurrencies=settings.memory_concurrencies,
            latency=max(settings.latency_s, 0.01),
            progress=progress,
        )
    if "load" in sections:
        from bench.load_bench import bench_load

        if rk is None:
            res["load"] = {"error": "no `rk` executable found"}
        else:
            progress(f"load: rk serve-mcp --port, {settings.load_calls} concurrent tool calls")
            res["load"] = bench_load(
                rk,
                calls=settings.load_calls,
                rounds=settings.load_rounds,
                latency=0.05,
                fail_every=settings.load_fail_every,
                alone=settings.load_alone,
                profile=settings.server_profiles,
                diagnostics=settings.load_diagnostics,
                progress=progress,
            )
    if "startup" in sections:
        from bench.startup_bench import (
            bench_import_ratio,
            bench_startup,
            import_times,
            serve_mcp_import_times,
        )

        progress("startup: rk --version vs python -c pass")
        res["startup"] = bench_startup(settings.startup_rounds, settings.startup_warmup, progress=progress)
        res["importtime"] = import_times("reasonkit.cli", runs=settings.importtime_runs)
        progress("startup: what rk serve-mcp imports")
        it = serve_mcp_import_times(runs=settings.importtime_runs)
        res["serve_importtime"] = it
        if "error" not in it:
            res["serve_import"] = bench_import_ratio(
                it["top_level_modules"], rounds=settings.serve_import_rounds
            )
        if "mcp" not in sections and rk is not None:
            from bench.mcp_bench import bench_mcp

            progress("startup: rk serve-mcp stdio spawn to tools/list")
            res["stdio_start"] = bench_mcp(
                rk, None, rounds=settings.stdio_start_rounds, warm=5, raw_rounds=1, profile=False
            )
    _issue26_sections(res, settings, sections, rk, progress)
    res["all_sections"] = len(SECTIONS)
    res["load_avg_at_end"] = load_avg()
    res["elapsed_s"] = time.perf_counter() - t0
    return res


def _issue26_sections(
    res: dict[str, Any], settings: Settings, sections: tuple[str, ...], rk: str | None, progress: Progress
) -> None:
    """Sections 6-9 (issue 26): the embedded model, the run store, admission and workers, floors."""
    if "local" in sections:
        from bench.decode_bench import bench_decode

        progress("local: decode speed, our provider vs llama.cpp called directly")
        res["decode"] = bench_decode(settings.decode_tokens, settings.decode_rounds, progress=progress)
        res["local"] = _local_runs(settings, progress)
    if "store" in sections:
        from bench.store_bench import bench_store

        progress("store: SQLite vs PostgreSQL")
        res["store"] = bench_store(settings.store_runs, settings.store_steps)
    if rk is None:
        res.update(
            {s: {"error": "no `rk` executable found"} for s in ("admission", "floors") if s in sections}
        )
        return
    if "admission" in sections:
        from bench.admission_bench import run as bench_admission

        res["admission"] = bench_admission(
            rk,
            cap=settings.admission_cap,
            in_flight=settings.admission_in_flight,
            rounds=settings.admission_rounds,
            progress=progress,
        )
    if "floors" in sections:
        from bench.floors_bench import bench_floors

        progress("floors: server CPU per call, ours against bare starlette and a minimal SDK server")
        res["floors"] = bench_floors(
            rk, calls=settings.floors_calls, rounds=settings.floors_rounds, progress=progress
        )


def _local_runs(settings: Settings, progress: Progress) -> dict[str, Any]:
    """The profile runs on the embedded model (none in the quick setting) and the negotiation rows."""
    import anyio

    from bench.local_bench import negotiation_rows, profile_rows
    from reasonkit.providers.local import local_available

    profiles: list[dict[str, Any]] = []
    if settings.local_profiles:
        if not local_available():
            return {"error": "llama-cpp-python or the bundled model is not installed"}
        progress(f"local: profiles {', '.join(settings.local_profiles)} on the embedded model")
        profiles = anyio.run(profile_rows, list(settings.local_profiles))
    return {"profiles": profiles, "negotiation": anyio.run(negotiation_rows, settings.negotiation_calls)}
