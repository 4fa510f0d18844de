"""Section 9: server CPU per call against the floors of our own stack (issue 26, goals 1, 2, 5)."""

from __future__ import annotations

from typing import Any

from bench.floors_bench import ARMS, LABELS
from bench.report.markdown import fmt, table


def floors_section(f: dict[str, Any]) -> list[str]:
    out = ["## 9. Server CPU per call against the floors of its stack", ""]
    if "error" in f:
        return out + [f"Not measured: {f['error']}.", ""]
    s, ratios = f["settings"], f["ratios"]
    out += [
        "**What it measures.** Each server as its own process, one call in flight: "
        f"{s['calls']} tool calls (a POST of the same JSON-RPC body to the echo) per arm and round, "
        f"{s['rounds']} round(s) with the arms alternating; *server CPU* = the server process's CPU time "
        "over those calls / calls (`/proc`, 10 ms ticks: read small differences with care). The floors "
        "are what any server on this stack costs: bare uvicorn + starlette, and a minimal server on the "
        "same `mcp` SDK with one tool (bench/floor_servers.py). The fake provider answers at 0 ms. "
        f"Pinning: {f['pinning']}.",
        "",
    ]
    rows = []
    for arm in ARMS:
        a = f["arms"][arm]
        rng = f"{fmt(a['cpu_ms_min'], 2)} / {fmt(a['cpu_ms_median'], 2)} / {fmt(a['cpu_ms_max'], 2)}"
        load = a.get("load1") or []
        rows.append(
            [
                LABELS[arm],
                str(a["llm_calls"]),
                rng,
                fmt(a["rps_median"], 0),
                str(a["failures"]),
                f"{fmt(min(load), 2)}-{fmt(max(load), 2)}" if load else "n/a",
            ]
        )
    out += table(
        [
            "Arm (one call in flight)",
            "LLM calls",
            "Server CPU ms min / median / max",
            "Calls/s",
            "Failures",
            "Load avg (1 min)",
        ],
        rows,
        "lrrrrr",
    )
    sdk = f["sdk_vs_raw"]
    out += [
        "",
        "In the load generator's process, against the same fake provider: the OpenAI SDK costs "
        f"{fmt(sdk['sdk_cpu_ms'], 2)} ms of CPU per chat completion, a raw POST of the same body with "
        f"`json.loads` of the reply {fmt(sdk['raw_cpu_ms'], 3)} ms ({fmt(ratios['sdk_vs_raw_post'], 1)}x).",
        "",
        "**How to read the ratios** (each the median of per-round ratios, so a slow round slows both "
        "sides of it):",
        "",
        f"- cached call / minimal SDK server, quiet logging: **{fmt(ratios['cached_vs_sdk_quiet'], 2)}** "
        f"(default logging: {fmt(ratios['cached_vs_sdk_default'], 2)}; goal 1: <= 1.3). What a cached call "
        "does beyond the SDK's own request path: the gate, the run service, rendering the result, "
        "metrics and logging. The SDK server against bare starlette: "
        f"{fmt(ratios['sdk_quiet_vs_echo'], 2)}x, the SDK's own floor, out of our reach.",
        f"- our CPU per LLM call: (four-call run - cached call) / 4 = "
        f"**{fmt(ratios['ours_per_llm_call_ms'], 2)} ms**, against the OpenAI SDK's own "
        f"{fmt(sdk['sdk_cpu_ms'], 2)} ms: **{fmt(ratios['ours_per_llm_call_vs_sdk'], 2)}x** (goal 2: <= 2). "
        "It includes the SDK call itself, the engine's step (template, parsing, schema validation, "
        "scoring) and the run store's writes for that step.",
        f"- the run store's share of an uncached call (`save_runs = false` against the default): "
        f"{fmt(_pct(ratios['store_share_uncached']), 0)} %.",
        f"- goal 5, the SDK path against a raw POST: {fmt(ratios['sdk_vs_raw_post'], 1)}x more CPU per call. "
        "The decision whether a direct path for OpenAI-compatible servers is worth leaving the SDK "
        "belongs with the call path's owner; this number is its input.",
        "",
    ]
    return out


def _pct(share: float | None) -> float | None:
    return None if share is None else 100 * share
