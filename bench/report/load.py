"""Section 4: the HTTP server under load."""

from __future__ import annotations

from typing import Any

from bench.report.markdown import fmt, met, spy_tables, table
from bench.report.why import sdk_cost_note, why_cached

# The HTTP gate: its rules and what they share (reasonkit/server/http/gate.py).
GATE_MODULES = ("gate", "rule", "checks", "body", "reservation")


def _arm_row(
    label: str, d: dict[str, Any], answered: str, *, digits: int, cpu: str = "", errors: str | None = None
) -> list[str]:
    """One row of the load table, 13 columns: label, calls, answered, refused, errors, overhead p50 /
    p90 / p99 / max (of the answered calls), server CPU, then empty RSS / provider requests /
    injected 500s (the caller may replace the last three)."""
    overhead = [fmt(d[f"overhead_{q}_ms"], digits) for q in ("p50", "p90", "p99", "max")]
    return [
        label,
        str(d["n"]),
        answered,
        str(d["refused"]) if "refused" in d else "",
        str(d["errors"]) if errors is None else errors,
        *overhead,
        cpu,
        "",
        "",
        "",
    ]


def load_section(load: dict[str, Any], provider: dict[str, Any] | None = None) -> list[str]:
    out = ["## 4. Server under load (streamable HTTP)", ""]
    if "error" in load:
        return out + [f"Not measured: {load['error']}.", ""]
    s, goals = load["settings"], load["goals"]
    out += [
        "**What it measures.** `rk serve-mcp --port N` as a subprocess with default settings (stateless "
        "streamable HTTP, "
        "response cache on, run store on, loopback bind), a single-step user protocol `bench_one` (one LLM "
        "call per "
        "tool call; step temperature 0, so the response cache applies) in a temporary `[protocols] dirs`, "
        "and "
        f"`OPENAI_BASE_URL` at the fake server (own process) answering after **{s['latency_ms']:g} ms**. The "
        "load generator "
        "sends raw JSON-RPC `tools/call` POSTs to `/mcp` (`bench/rawhttp.py`, handshake-era "
        "`MCP-Protocol-Version: "
        f"{s['protocol_version']}`; the SDK's `mcp.Client` would add an initialize exchange and milliseconds "
        "of client CPU per call "
        "on the same two cores, and httpx's pool costs milliseconds per request at this concurrency). One "
        "call through "
        "`mcp.Client` over streamable HTTP checks the server first: "
        f"{'ok' if (load.get('sdk_client_check') or {}).get('ok') else 'FAILED'}. "
        f"{s['rounds']} rounds; each round fires {s['calls']} calls at once per arm, arms alternating: "
        "*uncached* (distinct "
        "queries: a cache miss and one LLM call each), *cached* (a query whose reply is cached: no LLM "
        "call), *faults* (as "
        f"uncached while the fake answers HTTP 500 to every {s['fail_every']}th request). Overhead per call "
        "= wall time - LLM "
        "layers x latency (1 for bench_one, 0 when cached). *Server CPU* = the server process's CPU time "
        "during the burst / "
        "calls. Peak RSS: the server's VmHWM (reset before each arm) and a 10 ms RSS sampler.",
        "",
    ]
    rows = []
    for arm, label in (
        ("uncached", "uncached (cache miss, 1 LLM call)"),
        ("cached", "cached (no LLM call)"),
        ("faults", f"uncached, every {s['fail_every']}th provider reply a 500"),
    ):
        d = load[arm]
        row = _arm_row(label, d, str(d["answered"]), digits=0, cpu=fmt(d["cpu_ms_per_call"], 2))
        row[7] = f"**{row[7]}**"
        row[-3:] = [fmt(d["rss_peak_mb"], 0), str(d["provider_requests"]), str(d["injected_500s"])]
        rows.append(row)
    store_off = load.get("store_off")
    if store_off and "error" not in store_off:
        label = "diagnostic: uncached with `[storage] save_runs = false`"
        answered = str(store_off["n"] - store_off["errors"])
        rows.append(_arm_row(label, store_off, answered, digits=0, cpu=fmt(store_off["cpu_ms_per_call"], 2)))
    for key, label in (
        ("alone_uncached", "alone: one call at a time, uncached"),
        ("alone_cached", "alone: one call at a time, cached"),
    ):
        d = load[key]
        rows.append(_arm_row(label, d, str(d["n"] - d["errors"]), digits=2))
    floor = load["load_generator_floor"]
    label = f"floor: the load generator alone, {s['calls']} POSTs at once to the fake provider"
    rows.append(_arm_row(label, floor, "", digits=0, errors=""))
    out += table(
        [
            "Arm",
            "Calls",
            "Answered",
            "Refused (503 / busy)",
            "Errors",
            "Overhead p50 ms",
            "p90",
            "p99",
            "max",
            "Server CPU ms / call",
            "Peak RSS MB",
            "Provider requests",
            "Injected 500s",
        ],
        rows,
        "lrrrrrrrrrrrr",
    )
    goals_met = load["met"]
    out += [
        "",
        f"Idle RSS after start: {fmt(load.get('rss_idle_mb'), 0)} MB; after warm-up: "
        f"{fmt(load.get('rss_warm_mb'), 0)} MB. "
        f"Goals: errors 0: {met(goals_met['errors'])}; p99 overhead <= {goals['p99_overhead_ms']:g} ms: "
        f"{met(goals_met['p99'])}; peak RSS <= "
        f"{goals['peak_rss_mb']:g} MB: {met(goals_met['rss'])}; cached call <= {goals['cached_call_ms']:g} "
        f"ms (alone, p50): {met(goals_met['cached'])}.",
        "",
        "Per round:",
        "",
    ]
    round_rows = []
    for arm in ("uncached", "cached", "faults"):
        for i, r in enumerate(load[arm]["rounds"]):
            round_rows.append(
                [
                    str(i + 1),
                    arm,
                    fmt(r["overhead_p50_ms"], 0),
                    fmt(r["overhead_p99_ms"], 0),
                    str(r.get("refused", 0)),
                    str(r["errors"]),
                    fmt(r["burst_s"], 2),
                    str(r["provider_requests"]),
                    str(r["injected_500s"]),
                ]
            )
    round_rows.sort(key=lambda x: (int(x[0]), x[1]))
    out += table(
        [
            "Round",
            "Arm",
            "Overhead p50 ms",
            "p99 ms",
            "Refused",
            "Errors",
            "Burst s",
            "Provider requests",
            "Injected 500s",
        ],
        round_rows,
    ) + [""]
    f = load["faults"]
    out += [
        "Refusals are admission control at work, not errors: beyond `[server] max_concurrent_runs` "
        "(unset: 16 per CPU) a call is answered at once with 503 and `Retry-After` (section 8 measures how "
        "fast); the overhead columns are over the answered calls.",
        "",
        f"With faults, {f['answered']} of {f['n']} calls answered, {f.get('refused', 0)} refused and "
        f"{f['errors']} failed: the provider's "
        "retry loop "
        f"(max_retries 3, backoff from 0.5 s with jitter) absorbed the {f['injected_500s']} injected 500s "
        f"({f['provider_requests']} provider requests for {f['n']} calls); the retried calls are the slow "
        "tail.",
        "",
    ]
    if not goals_met["p99"] or not goals_met["cached"]:
        out += _why_missed(load, provider)
    profile = load.get("profile")
    if profile and "error" not in profile:
        out += spy_tables(
            profile, f"`rk serve-mcp --port` during three more uncached bursts of {s['calls']} calls"
        )
    elif profile:
        out += [f"(Server profile not taken: {profile['error']}.)", ""]
    return out


def _why_missed(load: dict[str, Any], provider: dict[str, Any] | None) -> list[str]:
    """Why a latency goal was missed: where the server's CPU went (from the profile) and why a cached
    call is slow, each with the fix it proposes."""
    s, goals_met = load["settings"], load["met"]
    out: list[str] = []
    u = load["uncached"]
    cpu = u.get("cpu_ms_per_call") or 0
    txt = [
        "**Why the p99 goal is missed.** The server runs one event loop in one process. Every call costs "
        f"{fmt(cpu, 1)} ms of server CPU (uncached; {fmt(load['cached'].get('cpu_ms_per_call'), 1)} ms "
        f"cached), so {s['calls']} calls "
        f"arriving at once queue behind about {fmt(cpu * s['calls'] / 1000, 1)} s of work, on a machine "
        "whose second core also runs "
        "the load generator and the fake provider. Alone, a call costs "
        f"{fmt(load['alone_uncached']['overhead_p50_ms'], 1)} ms over the provider (p50). A p99 of 50 ms "
        "at 200 in flight would need "
        "about 0.25 ms of CPU per call, or more server processes: replicas behind a load balancer "
        "(stateless HTTP "
        "lets any replica answer; `[server] workers` is not implemented). The profile of the uncached "
        "bursts below shows where the CPU goes:",
        "",
    ]
    profile = load.get("profile") or {}
    store_off = load.get("store_off")
    store_done = sdk_done = False
    provider_callers = ("OpenAIProvider._once", "_SDKProvider.", "AnthropicProvider._once")
    for c in profile.get("by_reasonkit_caller", []):
        if c["pct"] < 3:
            continue
        name = c["name"]
        if name.startswith(provider_callers):
            if sdk_done:
                continue
            sdk_done = True
            group = [x for x in profile["by_reasonkit_caller"] if x["name"].startswith(provider_callers)]
            c = {
                "name": " + ".join(x["name"].split(" (")[0] for x in group)
                + " (reasonkit/providers/openai_compat.py)",
                "pct": sum(x["pct"] for x in group),
                "leaves": c.get("leaves", []),
            }
            name = "OpenAIProvider._once"
        leaves = ", ".join(f"`{x['name']}` {fmt(x['pct'], 0)} %" for x in c.get("leaves", [])[:3])
        where = "outside any ReasonKit frame" if name.startswith("no ReasonKit") else f"under `{c['name']}`"
        head = f"- {fmt(c['pct'], 0)} % {where}" + (f" (hottest: {leaves})" if leaves else "") + ": "
        if name.startswith("no ReasonKit"):
            txt.append(
                head
                + "the MCP SDK's stateless streamable-HTTP path (per request a new transport, task group "
                "and memory streams, and an OpenTelemetry span even with the no-op tracer), uvicorn and "
                "h11. Proposed: upstream (a lighter stateless path in the SDK); on our side only more "
                "processes help."
            )
        elif name.startswith("OpenAIProvider._once"):
            txt.append(
                head + "the OpenAI SDK's own request path: parameter transforms, httpx2/httpcore2 with an "
                "anyio cancel scope around every socket operation, pydantic parsing of the reply. "
                + sdk_cost_note(provider)
                + " Proposed fix: a direct HTTP path for OpenAI-compatible chat completions in "
                "`reasonkit/providers/openai_compat.py` (one POST of the JSON body on a shared httpx "
                "connection pool, `json.loads` of the reply, the SDK kept for its error classes); the "
                "largest single lever in sections 1 and 4."
            )
        elif "reasonkit/store/" in name and not store_done:
            store_done = True
            store = sum(x["pct"] for x in profile["by_reasonkit_caller"] if "reasonkit/store/" in x["name"])
            diag = ""
            if store_off and "error" not in store_off and store_off.get("cpu_ms_per_call") and cpu:
                gain = 1 - store_off["cpu_ms_per_call"] / cpu
                diag = (
                    f" The diagnostic without the run store used {fmt(store_off['cpu_ms_per_call'], 1)} "
                    f"ms of CPU per call against {fmt(cpu, 1)} "
                    f"(p99 {fmt(store_off['overhead_p99_ms'], 0)} vs {fmt(u['overhead_p99_ms'], 0)} ms)"
                    + (
                        ": a measurable share."
                        if gain > 0.1
                        else ": no measurable gain in this run, so the store is not what limits this test."
                    )
                )
            txt.append(
                f"- {fmt(store, 0)} % in the run store (`reasonkit/store/sqlite.py`"
                + (f"; hottest: {leaves}" if leaves else "")
                + "): three write transactions per call "
                "(start, step snapshot, final), each in a worker thread, `RunStore._connect` opening a "
                "new SQLite connection "
                "whenever the pool (`pool_size = 4`) is empty (at 200 calls in flight it mostly is), and "
                "the whole trace "
                "JSON-encoded for every snapshot."
                + diag
                + " Proposed fix: one writer thread per store with a queue that keeps "
                "only the newest snapshot per run, and a pool as large as anyio's worker-thread limit "
                "(40)."
            )
        elif any(f"(reasonkit/server/http/{m}.py)" in name for m in GATE_MODULES):
            txt.append(head + "the HTTP gate's rules (`reasonkit/server/http/gate.py`) on every request.")
    if len(txt) > 2:
        out += txt + [""]
    if not goals_met["cached"]:
        out += [
            f"**Why the cached-call goal is missed.** {why_cached(load)}: alone, a cached call takes "
            f"{fmt(load['alone_cached']['wall_p50_ms'], 2)} ms end to end over HTTP, of which the MCP "
            "request path and the "
            "three run-store writes are most.",
            "",
        ]
    return out
