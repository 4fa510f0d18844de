"""Smoke test of the benchmark harness (bench/): it runs on a tiny setting and returns well-formed
results. Deliberately no assertions on speed: timings depend on the machine."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench import engine_bench, startup_bench
from bench.report import machine_info, render_markdown
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
    assert set(d) >= {"calls_per_run", "runs", "p50_ms", "p95_ms", "mean_ms", "stub_us_per_call", "round_p50_ms", "statuses"}
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
    assert set(micro["per_call"]) == set(micro["share_pct"]) == {"schema_errors_us", "validator_build_us", "template_parse_us"}
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
        for key in ("wall_p50_ms", "ratio_p50", "ratio_min", "ratio_max", "ratio_measured_p50", "mean_call_ms"):
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
    assert [(r["module"], r["depth"], r["parent"]) for r in rows] == [("leaf", 2, "mid"), ("mid", 1, "top"), ("top", 0, None)]


def test_report_renders_all_sections(registry, tmp_path):
    res: dict[str, Any] = {
        "machine": machine_info(),
        "setting": "smoke",
        "command": "pytest",
        "elapsed_s": 1.0,
        "overhead": engine_bench.bench_overhead(registry, [PROTOCOL], rounds=1, runs=2, warmup=0),
        "profile": engine_bench.profile_overhead(registry, [PROTOCOL], runs=1, profiler="cprofile"),
        "hotspots": engine_bench.hotspot_microbench(registry, [PROTOCOL], min_time=0.001, runs=1),
        "critical_path": engine_bench.bench_critical_path(
            registry, profiles=["balanced"], protocols=[], latency=0.001, rounds=1, concurrencies=(64,)
        ),
        "startup": startup_bench.bench_startup(rounds=1, warmup=0),
        "importtime": startup_bench.import_times(runs=1),
    }
    json.dumps(res, default=str)  # the --json output must be serialisable
    md = render_markdown(res)
    for heading in ("## Machine", "## Summary", "## 1. ", "### Where the time goes", "## 2. ", "## 3. ", "## How to reproduce"):
        assert heading in md
    assert "profile `balanced`" in md
    assert res["machine"]["cores_logical"] >= 1 and res["machine"]["python"]
