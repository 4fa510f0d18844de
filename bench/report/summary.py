"""The summary table at the top of the report: every goal, its result and, when missed, why."""

from __future__ import annotations

from typing import Any

from bench.report.markdown import fmt, summary_row, table
from bench.report.why import (
    stdio_start_ms,
    why_cached,
    why_critical_path,
    why_load,
    why_mcp_roundtrip,
    why_mcp_start,
    why_provider,
)


def summary(res: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []
    provider = res.get("provider")
    if provider and "error" not in provider:
        g = provider["goal_ratio"]
        for r in provider["ratios"]:
            lat = f"{r['latency_ms']:g} ms"
            rows.append(
                summary_row(
                    f"1. Provider: added latency per call, ReasonKit / LiteLLM, server at {lat}",
                    fmt(r["added_ratio"], 2),
                    f"< {g:g}",
                    fmt(r["added_ratio"] / g, 2),
                    r["added_ratio"] < g,
                    why_provider(provider, r),
                )
            )
            rows.append(
                summary_row(
                    f"1. Provider: time for {provider['settings']['conc_calls']} calls at "
                    f"{provider['settings']['concurrency']} in flight, ReasonKit / LiteLLM, server at {lat}",
                    fmt(r["conc_time_ratio"], 2),
                    f"< {g:g}",
                    fmt(r["conc_time_ratio"] / g, 2),
                    r["conc_time_ratio"] < g,
                    why_provider(provider, r),
                )
            )
    elif provider:
        rows.append(
            summary_row("1. Provider layer vs LiteLLM", "not measured", "< 1", "", None, provider["error"])
        )
    mcp = res.get("mcp")
    if mcp and mcp.get("ratios"):
        ratios, goals = mcp["ratios"], mcp["goals"]
        rows.append(
            summary_row(
                "2. MCP stdio: spawn to first `tools/list`, ReasonKit / sequential-thinking",
                fmt(ratios["spawn"], 2),
                f"<= {goals['startup_ratio']:g}",
                fmt(ratios["spawn"] / goals["startup_ratio"], 2),
                mcp["met"]["startup"],
                why_mcp_start(res),
            )
        )
        rows.append(
            summary_row(
                "2. MCP stdio: warm `tools/list` round trip, ReasonKit / sequential-thinking",
                fmt(ratios["roundtrip"], 2),
                f"< {goals['roundtrip_ratio']:g}",
                fmt(ratios["roundtrip"] / goals["roundtrip_ratio"], 2),
                mcp["met"]["roundtrip"],
                why_mcp_roundtrip(mcp),
            )
        )
    elif mcp and "error" in mcp:
        rows.append(
            summary_row("2. MCP server vs sequential-thinking", "not measured", "", "", None, mcp["error"])
        )
    overhead = res.get("overhead")
    if overhead:
        o = overhead["overall"]
        g = overhead["goal_ms"]
        rows.append(
            summary_row(
                "3. Engine: orchestration overhead per LLM call, p50 (all protocols)",
                f"{fmt(o['p50_ms'])} ms",
                f"<= {g} ms",
                f"{fmt(o['p50_ms'] / g, 2)}",
                overhead["met"],
                "see section 3a",
            )
        )
    critical = res.get("critical_path")
    if critical:
        rows += _critical_path_rows(critical)
    memory = res.get("memory")
    if memory and memory.get("rows"):
        big = max(memory["rows"], key=lambda r: (r["kind"] == "profile", r["concurrent_runs"]))
        rows.append(
            summary_row(
                f"3. Engine: memory per concurrent `{big['name']}` run ({big['concurrent_runs']} at once, "
                "tracemalloc peak)",
                f"{fmt(big['peak_kb_per_run'], 0)} KB",
                "(no goal)",
                "",
                None,
            )
        )
    load = res.get("load")
    if load and "error" not in load:
        goals, goals_met = load["goals"], load["met"]
        u = load["uncached"]
        n = load["settings"]["calls"]
        rows.append(
            summary_row(
                f"4. HTTP load: errors in {n} concurrent tool calls (all rounds, uncached + cached)",
                str(u["errors"] + load["cached"]["errors"]),
                "0",
                "",
                goals_met["errors"],
                "; ".join(list(u["error_kinds"])[:2]),
            )
        )
        rows.append(
            summary_row(
                f"4. HTTP load: p99 overhead over the provider latency, {n} concurrent calls",
                f"{fmt(u['overhead_p99_ms'], 0)} ms",
                f"<= {goals['p99_overhead_ms']:g} ms",
                fmt(u["overhead_p99_ms"] / goals["p99_overhead_ms"], 1),
                goals_met["p99"],
                why_load(load),
            )
        )
        rows.append(
            summary_row(
                "4. HTTP load: peak RSS of the server",
                f"{fmt(load['peak_rss_mb'], 0)} MB",
                f"<= {goals['peak_rss_mb']:g} MB",
                fmt((load["peak_rss_mb"] or 0) / goals["peak_rss_mb"], 2),
                goals_met["rss"],
            )
        )
        alone_cached = load["alone_cached"]
        rows.append(
            summary_row(
                "4. HTTP: cached tool call, alone, p50",
                f"{fmt(alone_cached['wall_p50_ms'], 2)} ms",
                f"<= {goals['cached_call_ms']:g} ms",
                fmt(alone_cached["wall_p50_ms"] / goals["cached_call_ms"], 2),
                goals_met["cached"],
                why_cached(load),
            )
        )
    elif load:
        rows.append(summary_row("4. Server under load", "not measured", "", "", None, load["error"]))
    startup = res.get("startup")
    if startup and "error" not in startup:
        rows.append(
            summary_row(
                "5. `rk --version` / `python -c pass` (ratio of medians)",
                fmt(startup["ratio_of_medians"], 2),
                f"<= {startup['goal_ratio']:g}",
                fmt(startup["ratio_of_medians"] / startup["goal_ratio"], 2),
                startup["met"],
                "see section 5",
            )
        )
    serve_import = res.get("serve_import")
    if serve_import and "error" not in serve_import:
        rows.append(
            summary_row(
                "5. `rk serve-mcp` imports / `python -c pass` (ratio of medians)",
                fmt(serve_import["ratio_of_medians"], 1),
                "(no goal)",
                "",
                None,
            )
        )
    stdio_ms = stdio_start_ms(res)
    if stdio_ms is not None:
        rows.append(
            summary_row(
                "5. `rk serve-mcp` stdio: spawn to first `tools/list` (issue 3)",
                f"{fmt(stdio_ms, 0)} ms",
                "<= 1000 ms",
                fmt(stdio_ms / 1000, 2),
                stdio_ms <= 1000,
                why_mcp_start(res),
            )
        )
    if not rows:
        return []
    return [
        "## Summary",
        "",
        *table(["Measure", "Result", "Goal", "Result / goal", "Status", "Why (when missed)"], rows, "lrrrll"),
        "",
        "A *result / goal* below 1.00 means the goal is met. Ratios are medians of per-round ratios (the "
        "pairs run in "
        "alternation, round by round); the sections below show every round.",
        "",
    ]


def _critical_path_rows(critical: dict[str, Any]) -> list[list[str]]:
    """Section 3's wall / critical path rows: `balanced` at each max_concurrency, then the worst
    profile at each."""
    rows: list[list[str]] = []
    g = critical["goal_ratio"]
    for r in critical["rows"]:
        if r["kind"] == "profile" and r["name"] == "balanced":
            rows.append(
                summary_row(
                    f"3. Engine: `balanced` wall / critical path, max_concurrency {r['max_concurrency']}",
                    fmt(r["ratio_p50"]),
                    f"<= {g:.2f}",
                    fmt(r["ratio_p50"] / g, 2),
                    r["met"],
                    why_critical_path(r),
                )
            )
    prof_rows = [r for r in critical["rows"] if r["kind"] == "profile"]
    for conc in critical["settings"]["concurrencies"]:
        sel = [r for r in prof_rows if r["max_concurrency"] == conc]
        if sel:
            worst = max(sel, key=lambda r: r["ratio_p50"])
            rows.append(
                summary_row(
                    f"3. Engine: worst profile (`{worst['name']}`) wall / critical path, "
                    f"max_concurrency {conc}",
                    fmt(worst["ratio_p50"]),
                    f"<= {g:.2f}",
                    fmt(worst["ratio_p50"] / g, 2),
                    worst["met"],
                    why_critical_path(worst),
                )
            )
    return rows
