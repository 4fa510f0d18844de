"""Section 8: admission control under a burst, and worker processes (issue 26, goals 3 and 4)."""

from __future__ import annotations

from typing import Any

from bench.report.markdown import fmt, table

REJECT_P99_GOAL_MS = 50.0
WORKERS_GOAL = 1.8


def admission_section(r: dict[str, Any]) -> list[str]:
    out = ["## 8. Admission control and worker processes", ""]
    if "error" in r:
        return out + [f"Not measured: {r['error']}.", ""]
    b, s = r["burst"], r["settings"]
    out += [
        f"**What it measures.** `rk serve-mcp --port` with `max_concurrent_runs = {b['cap']}`, no queue, "
        f"the fake provider answering after {s['burst_latency_s']:g} s; bursts of {b['calls']} uncached "
        f"calls at once (3x capacity), in the order routed, unrouted, unrouted, routed. *Routed* calls "
        "carry the MCP routing headers (`Mcp-Method: tools/call`, `Mcp-Name`), which the admission front "
        "(`reasonkit/server/http/front.py`) reads to refuse a call before its body; *unrouted* ones "
        "(handshake-era clients) are refused by the gate's run-slot rule after it has read the body. "
        "Refusal latency is measured by the load generator, from sending the request to reading the 503. "
        f"Pinning: {b['pinning']}.",
        "",
    ]
    rows = []
    for arm, label in (
        ("routed", "routed (refused at the front)"),
        ("unrouted", "unrouted (refused by the gate)"),
    ):
        a = b[arm]
        p99 = a["reject_p99_ms"]
        ok = p99 is not None and p99 <= REJECT_P99_GOAL_MS and a["admitted_within_deadline"]
        rows.append(
            [
                label,
                str(a["admitted"]),
                str(a["refused"]),
                str(len(a["other_errors"])),
                fmt(a["reject_p50_ms"], 1),
                f"**{fmt(p99, 1)}**",
                fmt(a["admitted_max_s"], 2),
                "yes" if a["admitted_within_deadline"] and a["admitted_all_complete"] else "**no**",
                fmt(a["load1"], 2),
                "**met**" if ok else "**missed**",
            ]
        )
    out += table(
        [
            "Burst",
            "Admitted",
            "Refused (503)",
            "Other errors",
            "Refusal p50 ms",
            f"p99 ms (goal <= {REJECT_P99_GOAL_MS:g})",
            "Slowest admitted s",
            f"All admitted complete within {b['deadline_s']} s",
            "Load avg (1 min)",
            "Goal",
        ],
        rows,
        "lrrrrrrlrl",
    )
    out += ["", *_workers(r), ""]
    return out


def _workers(r: dict[str, Any]) -> list[str]:
    s = r["settings"]
    w1, w2, ratio = r["workers_1"], r["workers_2"], r["throughput_ratio"]
    rows = []
    for n, w in ((1, w1), (2, w2)):
        shares = " / ".join(f"{x} %" for x in w.get("worker_cpu_pct", [])) or "(one process)"
        rows.append(
            [
                str(n),
                str(w["completed"]),
                fmt(w["seconds"], 2),
                f"**{fmt(w['calls_per_s'], 1)}**",
                fmt(w.get("cpu_ms_per_call"), 2),
                shares,
                w["pinning"],
                fmt(w.get("load1"), 2),
            ]
        )
    ok = ratio is not None and ratio >= WORKERS_GOAL
    out = [
        f"**Workers.** {s['in_flight']} uncached calls at once per round, {s['rounds']} round(s), provider "
        f"latency {s['latency_ms']:g} ms, every call admitted; `[server] workers` = 1, then 2. CPU per call "
        "is the supervisor's and its workers' together; the worker shares say how the kernel spread the "
        "connections.",
        "",
        *table(
            [
                "`[server] workers`",
                "Completed",
                "Seconds",
                "Calls/s",
                "Server CPU ms / call",
                "Worker CPU shares",
                "Pinning",
                "Load avg (1 min)",
            ],
            rows,
            "rrrrrllr",
        ),
        "",
        f"workers = 2 / workers = 1: **{fmt(ratio, 2)}x** (goal >= {WORKERS_GOAL:g}x: "
        f"{'**met**' if ok else '**missed**'}).",
    ]
    if not ok:
        out += ["", _why_workers(r)]
    return out


def _why_workers(r: dict[str, Any]) -> str:
    """What stops two workers from doing twice the work, from this run's numbers."""
    w1, w2 = r["workers_1"], r["workers_2"]
    why = []
    if "not pinned" in w2["pinning"]:
        why.append(
            "this machine has too few cores for two workers and a load generator apart: the generator and "
            "the fake provider take CPU from the same cores as the workers, so two workers never have two "
            "cores to themselves (a measurement limit, not the server's)"
        )
    c1, c2 = w1.get("cpu_ms_per_call"), w2.get("cpu_ms_per_call")
    if c1 and c2 and c2 > 1.15 * c1:
        why.append(
            f"each call cost more CPU with two workers ({fmt(c2, 2)} against {fmt(c1, 2)} ms): the workers "
            "contend for something they share (the SQLite run store's one writer, the metrics files of "
            "prometheus-client's multiprocess mode)"
        )
    elif c1 and c2:
        why.append(
            f"the CPU per call did not grow with two workers ({fmt(c2, 2)} against {fmt(c1, 2)} ms), so "
            "nothing they share (the SQLite store's writer, the multiprocess metrics) costs extra work"
        )
    shares = w2.get("worker_cpu_pct") or []
    if len(shares) == 2 and shares[0] - shares[1] > 20:
        why.append(
            f"the kernel gave one worker most of the connections ({shares[0]} % against {shares[1]} % of the "
            "CPU): both accept from one inherited socket, and the load generator keeps its connections "
            "open, so an early imbalance lasts the whole run"
        )
    return "Why the goal is missed in this run: " + "; ".join(why) + "." if why else ""
