"""The issue-26 sections of the bench on a tiny setting (no assertions on speed): the floors, the
admission bursts and workers, the store and the decode arms return well-formed results, the
pinning plan is sound, and the goals table judges each goal from them."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench import pinning
from bench.report.goals import goal_rows


def _positive(x: Any) -> bool:
    return isinstance(x, int | float) and not math.isnan(x) and x > 0


def test_pinning_separates_server_and_generator_or_says_why():
    one, two = pinning.plan(1), pinning.plan(2)
    cores = pinning.usable_cores()
    for p, workers in ((one, 1), (two, 2)):
        if p.pinned:
            assert len(p.server) == workers and p.generator and not set(p.server) & set(p.generator)
            assert p.prefix()[:2] == ["taskset", "-c"]
            assert p.describe().startswith("server on core")
        else:
            assert p.prefix() == [] and p.describe().startswith("not pinned (")
    if len(cores) < 3:
        assert not two.pinned and "cannot hold 2 server processes" in two.why
    before = pinning.usable_cores()
    with pinning.generator_pinned(one):
        if one.pinned:
            assert pinning.usable_cores() == list(one.generator)
    assert pinning.usable_cores() == before


def test_floors_structure(floors_result):
    from bench.floors_bench import ARMS

    res = floors_result
    assert set(res["arms"]) == set(ARMS)
    for arm, a in res["arms"].items():
        assert a["failures"] == 0, arm
        assert _positive(a["rps_median"]) and len(a["load1"]) == 1
    assert res["arms"]["rk_four"]["llm_calls"] == 4
    sdk = res["sdk_vs_raw"]
    assert _positive(sdk["sdk_cpu_ms"]) and _positive(sdk["raw_cpu_ms"])
    assert set(res["ratios"]) >= {"cached_vs_sdk_quiet", "ours_per_llm_call_vs_sdk", "sdk_vs_raw_post"}
    assert res["pinning"]


def test_admission_structure(admission_result):
    res = admission_result
    for arm in ("routed", "unrouted"):
        b = res["burst"][arm]
        assert b["bursts"] == 2 and b["admitted"] == 2 * 2 and b["refused"] == 2 * 4, b
        assert b["other_errors"] == [] and b["admitted_all_complete"] and b["admitted_within_deadline"]
        assert _positive(b["reject_p99_ms"]) and b["reject_p99_ms"] >= b["reject_p50_ms"]
    for n in (1, 2):
        w = res[f"workers_{n}"]
        assert w["completed"] == 6 and w["errors"] == [] and _positive(w["calls_per_s"])
    assert len(res["workers_2"]["worker_cpu_pct"]) == 2 and res["workers_1"]["worker_cpu_pct"] == []
    assert _positive(res["throughput_ratio"])


def test_store_structure(store_result):
    backends = {r["backend"] for r in store_result["rows"]}
    assert "sqlite" in backends
    assert ("postgres" in backends) != bool(store_result.get("postgres_error"))
    assert {r["threads"] for r in store_result["rows"]} == {1, 4}
    assert all(_positive(r["run_ms"]) for r in store_result["rows"])


@pytest.mark.realmodel
@pytest.mark.timeout(600)  # four processes, each loading the model
def test_decode_structure_and_its_section(decode_result):
    from bench.report.local import local_section

    assert "error" not in decode_result, decode_result.get("error")
    assert set(decode_result["tok_s"]) == {"raw_main", "raw_thread", "raw_two", "raw_main_after", "provider"}
    assert all(_positive(v) for v in decode_result["tok_s"].values())
    assert all(_positive(v) for v in decode_result["ratios"].values())
    md = "\n".join(local_section(decode_result, None))
    assert md.startswith("## 6. ") and "ReasonKit's local provider" in md
    rows = {r["goal"]: r for r in goal_rows({"decode": decode_result})}
    assert all(isinstance(r["met"], bool) for g, r in rows.items() if g.startswith("6."))


def test_goals_table_judges_every_goal(floors_result, admission_result):
    res = {
        "floors": floors_result,
        "admission": admission_result,
        "sections": ["floors", "admission"],
        "all_sections": 11,
    }
    json.dumps(res, default=str)
    rows = {r["goal"].split(".")[0]: r for r in goal_rows(res)}
    assert set(rows) == {"1", "2", "3", "4", "5", "6", "7"}
    for goal in ("1", "2", "3", "4"):
        assert isinstance(rows[goal]["measured"], float) and isinstance(rows[goal]["met"], bool), goal
    assert rows["5"]["met"] is None and _positive(rows["5"]["measured"])  # a decision, not a target
    assert rows["6"]["measured"] is None and rows["6"]["met"] is None  # not measured in this run
    assert rows["7"]["measured"] == "2 of 11" and rows["7"]["met"] is False
