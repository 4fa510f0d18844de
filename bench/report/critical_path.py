"""Sections 3b and 3c: wall time against the critical path, and memory per concurrent run."""

from __future__ import annotations

from typing import Any

from bench.report.markdown import fmt, table


def critical_path_section(critical: dict[str, Any]) -> list[str]:
    s = critical["settings"]
    g = critical["goal_ratio"]
    lat = s["latency_ms"]
    out = [
        "### 3b. Profile wall time vs critical path",
        "",
        f"**What it measures.** The same in-process provider, but every call takes a fixed **{lat:g} ms** "
        "(`anyio.sleep`). The ideal wall time of a run is its critical path: the longest chain of LLM calls "
        "that must happen one after another. Ratio = measured wall time of `run_profile` / `run_protocol` "
        "divided by that critical path; 1.00 would be perfect scheduling with zero overhead. "
        f"{s['rounds']} rounds; in each round every target runs once per concurrency setting "
        f"({', '.join(str(c) for c in s['concurrencies'])}); the table shows the median ratio and its range "
        "over the rounds.",
        "",
        "**How the critical path is computed.** From each run's own trace, in *layers* (sequential LLM "
        "calls), then x latency. A step instance takes 1 layer, plus 1 if a repair call followed its reply "
        "(samples run side by side, so the longest sample counts); a `for_each` step takes as many layers "
        "as its slowest item (items run side by side). Within a protocol a step finishes at the latest "
        "finish of the steps it depends on (`depends_on` plus the step its `for_each` reads) plus its own "
        "layers. In a profile, an entry starts when the earlier entries its input templates name as "
        "`results.<id>` have finished, and an entry with `when` starts after every earlier entry; a skipped "
        "entry takes 0 layers. This ignores `max_concurrency`: at 64 the limiter never binds here; at 16 "
        "(the "
        "engine's default) it binds only where more than 16 calls could run at once, and the diagnostics "
        "below show the limiter-aware path.",
        "",
    ]
    rows, diag = [], []
    for r in critical["rows"]:
        ran = [k for k, v in (r["entries"] or {}).items() if v["status"] != "skipped"]
        skipped = [k for k, v in (r["entries"] or {}).items() if v["status"] == "skipped"]
        note = (
            ""
            if r["kind"] == "protocol"
            else " → ".join(ran) + (f" (skipped: {', '.join(skipped)})" if skipped else "")
        )
        flags = []
        if not r["layers_constant"]:
            flags.append("layers varied")
        if not r["trace_calls_match"]:
            flags.append("trace/provider call counts differ")
        if set(r["statuses"]) != {"complete"}:
            flags.append("status " + ", ".join(f"{k} {v}" for k, v in r["statuses"].items()))
        target = f"{r['kind']} `{r['name']}`"
        ratio = fmt(r["ratio_p50"])
        rows.append(
            [
                target,
                str(r["max_concurrency"]),
                f"{r['calls_per_run']:g}",
                str(r["layers"]),
                fmt(r["critical_path_ms"], 0),
                fmt(r["wall_p50_ms"], 1),
                f"**{ratio}**" if r["name"] == "balanced" and r["kind"] == "profile" else ratio,
                f"{fmt(r['ratio_min'])}–{fmt(r['ratio_max'])}",
                fmt(r["ratio_p50"] / g, 2),
                "; ".join(filter(None, [note, *flags])),
            ]
        )
        diag.append(
            [
                target,
                str(r["max_concurrency"]),
                str(r["peak_in_flight"]),
                fmt(r["mean_call_ms"], 2),
                fmt(r["ratio_measured_p50"]),
                str(r["layers_limited"]),
                fmt(r["ratio_limited_p50"]),
            ]
        )
    out += table(
        [
            "Target",
            "Concurrency",
            "Calls",
            "Layers",
            "Critical path ms",
            "Wall p50 ms",
            "Ratio p50",
            "Ratio range",
            "Ratio / goal",
            "Entries run (in chain order)",
        ],
        rows,
        "lrrrrrrrrl",
    )
    out += [
        "",
        f"Goal: ratio <= {g:.2f}.",
        "",
        "Diagnostics for the same runs. *Peak in flight*: most provider calls at once. *Call ms*: mean "
        "measured duration of one provider call (the sleep plus the event loop's timer overshoot). *Ratio at "
        "call ms*: wall / (layers x call ms), which leaves out the overshoot (the stub's, not the engine's). "
        "*Layers with the limiter*: the critical path when parallel items and samples beyond "
        "`max_concurrency` must wait for a free slot (extra waves; a lower bound), and the ratio against it: "
        "what is left once the limiter's own, intended, serialisation is accounted for.",
        "",
        *table(
            [
                "Target",
                "Concurrency",
                "Peak in flight",
                "Call ms",
                "Ratio at call ms",
                "Layers with the limiter",
                "Ratio vs limiter-aware path",
            ],
            diag,
            "lrrrrrr",
        ),
        "",
    ]
    bal = [r for r in critical["rows"] if r["kind"] == "profile" and r["name"] == "balanced"]
    if bal:
        out += ["`balanced` per round:", ""]
        hdr = (
            ["Round"]
            + [f"wall ms @ {r['max_concurrency']}" for r in bal]
            + [f"ratio @ {r['max_concurrency']}" for r in bal]
        )
        round_rows = []
        for i in range(len(bal[0]["ratios"])):
            round_rows.append(
                [str(i + 1)] + [fmt(r["wall_ms"][i], 1) for r in bal] + [fmt(r["ratios"][i]) for r in bal]
            )
        out += table(hdr, round_rows) + [""]
        e = bal[0]["entries"] or {}
        if e:
            spans = ", ".join(f"`{k}` layers {v['start']}–{v['start'] + v['layers']}" for k, v in e.items())
            out += [f"`balanced` critical path by entry: {spans}.", ""]
    return out


def memory_section(memory: dict[str, Any]) -> list[str]:
    s = memory["settings"]
    out = [
        "### 3c. Memory per concurrent run",
        "",
        "**What it measures.** N runs at once (one `Engine` per run, as the MCP server makes one per tool "
        "call; max_concurrency "
        f"{s['max_concurrency']} each; one shared in-process provider with {s['latency_ms']:g} ms per call, "
        "so all N runs are alive "
        "together). *Peak*: tracemalloc's peak of Python allocations above the baseline while they ran, / N. "
        "*Retained*: "
        "what the N finished `RunResult`s (their full traces) still hold, / N. *RSS*: growth of the "
        "process's resident set "
        "(VmHWM, reset before each batch) / N; it counts only memory the process did not already have (freed "
        "memory from "
        "an earlier batch is reused), so it can read lower than the peak.",
        "",
    ]
    rows = [
        [
            f"{r['kind']} `{r['name']}`",
            str(r["concurrent_runs"]),
            f"{r['calls_per_run']:g}",
            str(r["peak_in_flight"]),
            fmt(r["wall_ms"], 0),
            fmt(r["peak_kb_per_run"], 0),
            fmt(r["retained_kb_per_run"], 0),
            fmt(r["rss_kb_per_run"], 0) if r["rss_kb_per_run"] is not None else "n/a",
        ]
        for r in memory["rows"]
    ]
    out += table(
        [
            "Target",
            "Runs at once",
            "LLM calls / run",
            "Peak calls in flight",
            "Wall ms",
            "Peak KB / run",
            "Retained KB / run",
            "RSS KB / run",
        ],
        rows,
    )
    return out + [
        "",
        "No goal is set for memory; 200 concurrent `balanced` runs need about 200 x the peak above.",
        "",
    ]
