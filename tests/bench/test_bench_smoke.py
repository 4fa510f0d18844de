"""Smoke test of the benchmark harness (bench/): it runs on a tiny setting and returns well-formed
results. Deliberately no assertions on speed: timings depend on the machine.

Nothing here installs anything: the LiteLLM comparison runs only where LiteLLM is importable (it lives
in .bench-venv/, not in the product's environment), the Node peer only where bench/.node/ already
exists, the chart only where matplotlib is importable."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench import engine_bench, startup_bench
from bench.env import node_peer
from bench.report import machine_info, render_markdown
from bench.report.document import SECTION_TITLES
from reasonkit.protocol.loader import load_registry

PROTOCOL = "bedrock"


@pytest.fixture(scope="module")
def registry():
    reg = load_registry()
    assert PROTOCOL in reg.protocols and {"quick", "balanced"} <= set(reg.profiles), reg.problems
    return reg


def _positive(x: float) -> bool:
    return isinstance(x, int | float) and not math.isnan(x) and x > 0


def test_overhead_structure(registry):
    res = engine_bench.bench_overhead(registry, [PROTOCOL], rounds=1, runs=2, warmup=1)
    assert set(res) >= {"goal_ms", "settings", "protocols", "overall", "met"}
    d = res["protocols"][PROTOCOL]
    assert set(d) >= {
        "calls_per_run",
        "runs",
        "p50_ms",
        "p95_ms",
        "mean_ms",
        "stub_us_per_call",
        "round_p50_ms",
        "statuses",
    }
    assert d["runs"] == 2 and d["calls_per_run"] == 3  # bedrock: three sequential steps
    assert d["statuses"] == {"complete": 2}
    for key in ("p50_ms", "p95_ms", "mean_ms"):
        assert _positive(d[key]) and _positive(res["overall"][key])
    assert d["p95_ms"] >= d["p50_ms"]
    assert len(res["overall"]["round_p50_ms"]) == 1
    assert isinstance(res["met"], bool)


@pytest.mark.parametrize("profiler", ["cprofile"])
def test_profile_and_hotspots_structure(registry, profiler):
    prof = engine_bench.profile_overhead(registry, [PROTOCOL], runs=2, profiler=profiler)
    assert prof["profiler"] == profiler and prof["calls"] == 2 * 3
    assert prof["areas"] and all(set(a) >= {"area", "self_s", "pct"} for a in prof["areas"])
    assert math.isclose(sum(a["pct"] for a in prof["areas"]), 100.0, rel_tol=1e-6)
    assert prof["functions"] and all(_positive(f["inclusive_s"]) for f in prof["functions"])

    micro = engine_bench.hotspot_microbench(registry, [PROTOCOL], min_time=0.001, runs=2)
    assert {r["step"] for r in micro["steps"]} == {"decompose", "axioms", "reconstruct"}
    assert all(r["calls"] == 1 for r in micro["steps"])
    assert _positive(micro["engine_us_per_call"])
    assert (
        set(micro["per_call"])
        == set(micro["share_pct"])
        == {"schema_errors_us", "validator_build_us", "template_parse_us"}
    )
    assert all(_positive(v) for v in [*micro["per_call"].values(), *micro["share_pct"].values()])


def test_critical_path_structure(registry):
    res = engine_bench.bench_critical_path(
        registry, profiles=[], protocols=[PROTOCOL], latency=0.001, rounds=2, concurrencies=(64, 1)
    )
    assert res["settings"] == {"latency_ms": 1.0, "rounds": 2, "concurrencies": [64, 1]}
    assert len(res["rows"]) == 2
    for row in res["rows"]:
        assert row["kind"] == "protocol" and row["name"] == PROTOCOL
        assert row["layers"] == 3 and row["layers_constant"]  # decompose -> axioms -> reconstruct
        assert row["calls_per_run"] == 3 and row["trace_calls_match"]
        assert math.isclose(row["critical_path_ms"], 3.0)
        assert len(row["ratios"]) == 2
        for key in (
            "wall_p50_ms",
            "ratio_p50",
            "ratio_min",
            "ratio_max",
            "ratio_measured_p50",
            "mean_call_ms",
        ):
            assert _positive(row[key]), key
        assert row["peak_in_flight"] == 1  # a chain: never two calls at once


def test_critical_path_of_a_profile_follows_entry_dependencies(registry):
    """Layers are computed from the trace: a profile with a fan-out protocol and a chain of entries."""
    res = engine_bench.bench_critical_path(
        registry, profiles=["quick"], protocols=[], latency=0.001, rounds=1, concurrencies=(64,)
    )
    (row,) = res["rows"]
    # gigathink: dimensions -> explore (10 items side by side) -> synthesize; laserlogic:
    # extract -> assess | fallacies -> verdict; laserlogic waits for gigathink's answer.
    assert row["layers"] == 6
    assert row["entries"]["laserlogic"]["start"] == 3
    assert row["peak_in_flight"] >= 2


def test_startup_and_importtime_structure():
    st = startup_bench.bench_startup(rounds=2, warmup=0)
    assert "error" not in st, st.get("error")
    assert len(st["round_ratios"]) == 2 and st["version_output"].startswith("rk ")
    for key in ("rk_p50_ms", "python_p50_ms", "ratio_of_medians", "ratio_p50"):
        assert _positive(st[key]), key

    it = startup_bench.import_times("reasonkit.cli", runs=1, top=5)
    assert "error" not in it, it.get("error")
    assert _positive(it["total_ms"]) and len(it["top"]) == 5
    assert all(_positive(t["cumulative_ms"]) and t["module"] != "reasonkit.cli" for t in it["top"])


def test_parse_importtime_parents():
    text = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:        10 |         10 |     leaf\n"
        "import time:        20 |         30 |   mid\n"
        "import time:        40 |         70 | top\n"
    )
    rows = startup_bench.parse_importtime(text)
    assert [(r["module"], r["depth"], r["parent"]) for r in rows] == [
        ("leaf", 2, "mid"),
        ("mid", 1, "top"),
        ("top", 0, None),
    ]


# ------------------------------------------------------------------------------------------------ helpers
def test_fake_openai_server_latency_faults_and_stats():
    import anyio

    from bench.procs import FakeOpenAI
    from bench.rawhttp import RawClient

    with FakeOpenAI(latency=0.0, content='{"answer": "x", "confidence": 0.5}') as fake:
        fake.configure(fail_every=2)

        async def main() -> list[int]:
            client = RawClient("127.0.0.1", fake.port)
            statuses = []
            for _ in range(4):
                r = await client.post(
                    "/v1/chat/completions",
                    b'{"model": "m", "messages": []}',
                    {"content-type": "application/json"},
                )
                statuses.append(r.status)
                if r.status == 200:
                    body = json.loads(r.body)
                    assert json.loads(body["choices"][0]["message"]["content"]) == {
                        "answer": "x",
                        "confidence": 0.5,
                    }
                    assert body["usage"]["prompt_tokens"] > 0
            await client.aclose()
            return statuses

        assert anyio.run(main) == [200, 500, 200, 500]
        st = fake.stats()
        assert st["requests"] == 4 and st["failed"] == 2
        fake.reset()
        assert fake.stats()["requests"] == 0


def test_bench_imports_nothing_from_tests():
    import ast
    from pathlib import Path

    import bench

    offenders = []
    root = Path(bench.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # bench/.node/ (installed by section 2) is not the bench's code
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            offenders += [f"{path.name}: {n}" for n in names if n == "tests" or n.startswith("tests.")]
    assert offenders == []


def test_chain_dependencies_of_the_built_in_profiles(registry):
    from reasonkit.protocol.dependencies import chain_dependencies

    assert chain_dependencies(registry.profile("quick")) == {"gigathink": [], "laserlogic": ["gigathink"]}
    for profile in registry.profiles.values():
        deps = chain_dependencies(profile)
        order = [entry.entry_id for entry in profile.chain]
        assert list(deps) == order
        for i, entry in enumerate(profile.chain):
            assert set(deps[entry.entry_id]) <= set(order[:i])  # only earlier entries
            if entry.when is not None:
                assert deps[entry.entry_id] == order[:i]  # a condition waits for everything before it


def test_profiled_fake_provider_counts_as_the_stub():
    import reasonkit.providers.fake
    from bench.engine_bench import profiling

    assert profiling._area(reasonkit.providers.fake.__file__).startswith("benchmark provider stub")
    assert profiling._area(profiling.__file__).startswith("benchmark provider stub")
    assert (
        profiling._area(reasonkit.__file__.replace("__init__.py", "engine/runner.py"))
        == "reasonkit.engine.runner"
    )


def test_spy_fold_raw():
    from bench.spy import fold_raw

    text = (
        "main (reasonkit/_entry.py:17);_run_once (asyncio/base_events.py:1922);_once "
        "(reasonkit/providers/sdk.py:229);create (openai/x.py:1) 3\n"
        "main (reasonkit/_entry.py:17);_run_once (asyncio/base_events.py:1922);select (selectors.py:468) 1\n"
    )
    prof = fold_raw(text)
    assert prof["samples"] == 4
    assert {a["name"] for a in prof["areas"]} == {"openai", "stdlib selectors"}
    callers = {c["name"]: c["pct"] for c in prof["by_reasonkit_caller"]}
    assert callers["_once (reasonkit/providers/sdk.py)"] == 75.0
    assert any(k.startswith("no ReasonKit frame") for k in callers)


def test_env_helpers_install_nothing():
    from bench import env

    assert isinstance(env.in_bench_venv(), bool)
    peer = node_peer(lambda _m: None, install=False)
    assert ("error" in peer) or ({"node", "server_js", "node_version"} <= set(peer))


# ------------------------------------------------------------------------------------------------ sections
@pytest.fixture(scope="module")
def rk() -> str:
    import sys

    found = startup_bench.find_rk(sys.executable)
    assert found, "no rk console script next to this interpreter"
    return found


@pytest.fixture(scope="module")
def provider_result():
    pytest.importorskip("litellm", reason="LiteLLM lives in .bench-venv/ only")
    from bench.provider_bench import bench_provider

    return bench_provider(latencies=(0.0,), rounds=1, calls=2, warmup=1, concurrency=2, conc_calls=4)


def test_provider_structure(provider_result):
    res = provider_result
    assert "error" not in res, res.get("error")
    assert {r["arm"] for r in res["rows"]} == {"reasonkit", "litellm", "openai_sdk", "raw_http"}
    assert res["info"]["reasonkit_cache"] is False and res["info"]["reasonkit_breaker"] is True
    (ratio,) = res["ratios"]
    for key in ("added_ratio", "layer_ratio", "cpu_ratio", "conc_time_ratio"):
        assert isinstance(ratio[key], float), key
    assert all(_positive(r["conc_throughput"]) for r in res["rows"])


def test_fake_server_cost_structure():
    from bench.provider_bench import fake_server_cost

    res = fake_server_cost(n=3, rounds=1)
    assert _positive(res["fake_openai_ms"]) and _positive(res["in_thread_ms"])
    assert [len(v) for v in res["rounds_ms"].values()] == [1, 1]


@pytest.fixture(scope="module")
def mcp_result(rk):
    from bench.mcp_bench import bench_mcp

    peer = node_peer(lambda _m: None, install=False)
    return bench_mcp(rk, None if "error" in peer else peer, rounds=1, warm=2, raw_rounds=1, profile=False)


def test_mcp_structure(mcp_result):
    res = mcp_result
    rk_s = res["servers"]["reasonkit"]
    assert rk_s["tools"] >= 7 and rk_s["protocol_version"] == "2025-11-25"
    for key in ("spawn_p50_ms", "rt_p50_ms", "raw_list_p50_ms", "raw_rt_p50_ms"):
        assert _positive(rk_s[key]), key
    assert rk_s["list_bytes"] > 1000 and isinstance(res["stdio_start_met"], bool)
    if "sequential_thinking" in res["servers"]:
        assert res["servers"]["sequential_thinking"]["tools"] == 1
        assert _positive(res["ratios"]["spawn"]) and isinstance(res["met"]["roundtrip"], bool)


def test_tools_list_profile_structure():
    from bench.mcp_bench import tools_list_profile

    res = tools_list_profile("rk", calls=3)
    assert res["tools"] >= 7 and res["bytes"] > 1000
    assert all(_positive(res[k]) for k in ("build_us", "serialise_us", "client_parse_us"))


def test_memory_structure(registry):
    res = engine_bench.bench_memory(registry, [("protocol", PROTOCOL)], concurrencies=(1, 2), latency=0.001)
    assert [r["concurrent_runs"] for r in res["rows"]] == [1, 2]
    for r in res["rows"]:
        assert r["statuses"] == {"complete": r["concurrent_runs"]} and r["calls_per_run"] == 3
        assert _positive(r["peak_kb_per_run"])


@pytest.fixture(scope="module")
def load_result(rk):
    from bench.load_bench import bench_load

    return bench_load(
        rk, calls=4, rounds=1, latency=0.005, fail_every=2, alone=1, profile=False, diagnostics=False
    )


def test_load_structure(load_result):
    res = load_result
    assert res["sdk_client_check"]["ok"] and res["sdk_client_check"]["has_bench_one"]
    assert res["exit_status"] == 0
    for arm in ("uncached", "cached", "faults"):
        d = res[arm]
        assert d["n"] == 4 and d["answered"] + d["errors"] == 4, (arm, d["error_kinds"])
        assert len(d["rounds"]) == 1 and isinstance(d["overhead_p99_ms"], float)
    assert res["uncached"]["errors"] == 0 and res["cached"]["errors"] == 0
    assert (
        res["uncached"]["provider_requests"] == 4 and res["cached"]["provider_requests"] == 0
    )  # cached: no LLM call
    assert res["faults"]["injected_500s"] >= 1
    assert set(res["met"]) == {"errors", "p99", "rss", "cached"}


def test_serve_mcp_import_times_and_ratio():
    it = startup_bench.serve_mcp_import_times(runs=1, top=3)
    assert "error" not in it, it.get("error")
    assert _positive(it["total_ms"]) and "reasonkit.server.mcp.app" in it["top_level_modules"]
    assert it["by_package"] and it["top_self"]
    ratio = startup_bench.bench_import_ratio(["json"], rounds=1, warmup=0)
    assert _positive(ratio["ratio_of_medians"]) and len(ratio["round_ratios"]) == 1


def test_report_renders_all_sections(
    registry, tmp_path, mcp_result, load_result, floors_result, admission_result, store_result
):
    res: dict[str, Any] = {
        "machine": machine_info(),
        "setting": "smoke",
        "command": "pytest",
        "elapsed_s": 1.0,
        "mcp": mcp_result,
        "overhead": engine_bench.bench_overhead(registry, [PROTOCOL], rounds=1, runs=2, warmup=0),
        "profile": engine_bench.profile_overhead(registry, [PROTOCOL], runs=1, profiler="cprofile"),
        "hotspots": engine_bench.hotspot_microbench(registry, [PROTOCOL], min_time=0.001, runs=1),
        "critical_path": engine_bench.bench_critical_path(
            registry, profiles=["balanced"], protocols=[], latency=0.001, rounds=1, concurrencies=(64,)
        ),
        "memory": engine_bench.bench_memory(
            registry, [("protocol", PROTOCOL)], concurrencies=(1,), latency=0.001
        ),
        "load": load_result,
        "startup": startup_bench.bench_startup(rounds=1, warmup=0),
        "importtime": startup_bench.import_times(runs=1),
        "serve_importtime": startup_bench.serve_mcp_import_times(runs=1),
        "provider": {"error": "not run in this test"},
        "decode": {"error": "not run in this test (tests/bench/test_issue26_bench.py runs it)"},
        "local": {"error": "not run in this test"},
        "store": store_result,
        "admission": admission_result,
        "floors": floors_result,
    }
    json.dumps(res, default=str)  # the --json output must be serialisable
    md = render_markdown(res, chart="benchmarks.png")
    for heading in (
        "## Machine",
        "## Summary",
        "## 1. ",
        "## 2. ",
        "## 3. Engine",
        "### 3a. ",
        "#### Where the time goes",
        "### 3b. ",
        "### 3c. ",
        "## 4. ",
        "## 5. ",
        "### 5a. ",
        "### 5b. ",
        "### 5c. ",
        "## 6. ",
        "## 7. ",
        "## 8. ",
        "## 9. ",
        "## Issue 26 goals",
        "## How to reproduce",
    ):
        assert heading in md, heading
    generated = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert all(t.startswith(SECTION_TITLES) for t in generated), generated
    assert all(any(g.startswith(t) for g in generated) for t in SECTION_TITLES)  # every section
    assert "profile `balanced`" in md and "![Benchmark chart" in md
    assert res["machine"]["cores_logical"] >= 1 and res["machine"]["python"]

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    from bench.chart import render_chart

    assert render_chart(res, tmp_path / "chart.png") is None
    assert (tmp_path / "chart.png").stat().st_size > 1000


def test_every_section_of_the_committed_report_is_generated():
    """docs/benchmarks.md has no hand-written section: each `## ` heading is one the generator writes
    (SECTION_TITLES, checked against the generator above), and all of them are there."""
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
    text = doc.read_text(encoding="utf-8")
    assert "<!-- Generated by `python -m bench`" in text
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert [h for h in headings if not h.startswith(SECTION_TITLES)] == []
    assert [t for t in SECTION_TITLES if not any(h.startswith(t) for h in headings)] == []
