"""Machine information and the Markdown report (docs/benchmarks.md)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    from reasonkit import __version__

    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "load_avg_at_start": load,
        "reasonkit": __version__,
        "commit": (commit + (" (with uncommitted changes)" if dirty else "")) if commit else None,
    }


# --------------------------------------------------------------------------------------------------
def _f(x: float | None, nd: int = 3) -> str:
    if x is None or x != x:  # None or NaN
        return "n/a"
    return f"{x:.{nd}f}"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    seps = [":---" if a == "l" else "---:" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(seps) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _row(measure: str, result: str, goal: str, ratio: str, ok: bool | None, why: str = "") -> list[str]:
    return [measure, result, goal, ratio, "" if ok is None else _met(ok), why if ok is False else ""]


def _summary(res: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []
    pv = res.get("provider")
    if pv and "error" not in pv:
        g = pv["goal_ratio"]
        for r in pv["ratios"]:
            lat = f"{r['latency_ms']:g} ms"
            rows.append(_row(f"1. Provider: added latency per call, ReasonKit / LiteLLM, server at {lat}", _f(r["added_ratio"], 2), f"< {g:g}", _f(r["added_ratio"] / g, 2), r["added_ratio"] < g, _why_provider(pv, r)))
            rows.append(_row(f"1. Provider: time for {pv['settings']['conc_calls']} calls at {pv['settings']['concurrency']} in flight, ReasonKit / LiteLLM, server at {lat}", _f(r["conc_time_ratio"], 2), f"< {g:g}", _f(r["conc_time_ratio"] / g, 2), r["conc_time_ratio"] < g, _why_provider(pv, r)))
    elif pv:
        rows.append(_row("1. Provider layer vs LiteLLM", "not measured", "< 1", "", None, pv["error"]))
    mc = res.get("mcp")
    if mc and mc.get("ratios"):
        ra, gl = mc["ratios"], mc["goals"]
        rows.append(_row("2. MCP stdio: spawn to first `tools/list`, ReasonKit / sequential-thinking", _f(ra["spawn"], 2), f"<= {gl['startup_ratio']:g}", _f(ra["spawn"] / gl["startup_ratio"], 2), mc["met"]["startup"], _why_mcp_start(res)))
        rows.append(_row("2. MCP stdio: warm `tools/list` round trip, ReasonKit / sequential-thinking", _f(ra["roundtrip"], 2), f"< {gl['roundtrip_ratio']:g}", _f(ra["roundtrip"] / gl["roundtrip_ratio"], 2), mc["met"]["roundtrip"], _why_mcp_rt(mc)))
    elif mc and "error" in mc:
        rows.append(_row("2. MCP server vs sequential-thinking", "not measured", "", "", None, mc["error"]))
    ov = res.get("overhead")
    if ov:
        o = ov["overall"]
        g = ov["goal_ms"]
        rows.append(_row("3. Engine: orchestration overhead per LLM call, p50 (all protocols)", f"{_f(o['p50_ms'])} ms", f"<= {g} ms", f"{_f(o['p50_ms'] / g, 2)}", ov["met"], "see section 3a"))
    cp = res.get("critical_path")
    if cp:
        g = cp["goal_ratio"]
        for r in cp["rows"]:
            if r["kind"] == "profile" and r["name"] == "balanced":
                rows.append(_row(f"3. Engine: `balanced` wall / critical path, max_concurrency {r['max_concurrency']}", _f(r["ratio_p50"]), f"<= {g:.2f}", _f(r["ratio_p50"] / g, 2), r["met"], _why_cp(r)))
        prof_rows = [r for r in cp["rows"] if r["kind"] == "profile"]
        for conc in cp["settings"]["concurrencies"]:
            sel = [r for r in prof_rows if r["max_concurrency"] == conc]
            if sel:
                worst = max(sel, key=lambda r: r["ratio_p50"])
                rows.append(_row(f"3. Engine: worst profile (`{worst['name']}`) wall / critical path, max_concurrency {conc}", _f(worst["ratio_p50"]), f"<= {g:.2f}", _f(worst["ratio_p50"] / g, 2), worst["met"], _why_cp(worst)))
    mem = res.get("memory")
    if mem and mem.get("rows"):
        big = max(mem["rows"], key=lambda r: (r["kind"] == "profile", r["concurrent_runs"]))
        rows.append(_row(f"3. Engine: memory per concurrent `{big['name']}` run ({big['concurrent_runs']} at once, tracemalloc peak)", f"{_f(big['peak_kb_per_run'], 0)} KB", "(no goal)", "", None))
    ld = res.get("load")
    if ld and "error" not in ld:
        gl, met = ld["goals"], ld["met"]
        u = ld["uncached"]
        n = ld["settings"]["calls"]
        rows.append(_row(f"4. HTTP load: errors in {n} concurrent tool calls (all rounds, uncached + cached)", str(u["errors"] + ld["cached"]["errors"]), "0", "", met["errors"], "; ".join(list(u["error_kinds"])[:2])))
        rows.append(_row(f"4. HTTP load: p99 overhead over the provider latency, {n} concurrent calls", f"{_f(u['overhead_p99_ms'], 0)} ms", f"<= {gl['p99_overhead_ms']:g} ms", _f(u["overhead_p99_ms"] / gl["p99_overhead_ms"], 1), met["p99"], _why_load(ld)))
        rows.append(_row("4. HTTP load: peak RSS of the server", f"{_f(ld['peak_rss_mb'], 0)} MB", f"<= {gl['peak_rss_mb']:g} MB", _f((ld["peak_rss_mb"] or 0) / gl["peak_rss_mb"], 2), met["rss"]))
        ac = ld["alone_cached"]
        rows.append(_row("4. HTTP: cached tool call, alone, p50", f"{_f(ac['wall_p50_ms'], 2)} ms", f"<= {gl['cached_call_ms']:g} ms", _f(ac["wall_p50_ms"] / gl["cached_call_ms"], 2), met["cached"], _why_cached(ld)))
    elif ld:
        rows.append(_row("4. Server under load", "not measured", "", "", None, ld["error"]))
    st = res.get("startup")
    if st and "error" not in st:
        rows.append(_row("5. `rk --version` / `python -c pass` (ratio of medians)", _f(st["ratio_of_medians"], 2), f"<= {st['goal_ratio']:g}", _f(st["ratio_of_medians"] / st["goal_ratio"], 2), st["met"], "see section 5"))
    si = res.get("serve_import")
    if si and "error" not in si:
        rows.append(_row("5. `rk serve-mcp` imports / `python -c pass` (ratio of medians)", _f(si["ratio_of_medians"], 1), "(no goal)", "", None))
    ss = _stdio_start(res)
    if ss is not None:
        rows.append(_row("5. `rk serve-mcp` stdio: spawn to first `tools/list` (issue 3)", f"{_f(ss, 0)} ms", "<= 1000 ms", _f(ss / 1000, 2), ss <= 1000, _why_mcp_start(res)))
    if not rows:
        return []
    return [
        "## Summary",
        "",
        *_table(["Measure", "Result", "Goal", "Result / goal", "Status", "Why (when missed)"], rows, "lrrrll"),
        "",
        "A *result / goal* below 1.00 means the goal is met. Ratios are medians of per-round ratios (the pairs run in "
        "alternation, round by round); the sections below show every round.",
        "",
    ]


def _overhead(ov: dict[str, Any], prof: dict[str, Any] | None, micro: dict[str, Any] | None) -> list[str]:
    s = ov["settings"]
    g = ov["goal_ms"]
    out = [
        "### 3a. Orchestration overhead per LLM call",
        "",
        "**What it measures.** Every built-in protocol runs against an in-process provider with **zero "
        "latency**: it returns at once, without awaiting anything, a minimal valid object for the step's "
        "JSON schema (`fill_schema` from `tests/fakes/fake_llm.py`, built once per schema and cached; arrays "
        "get `minItems` items, at least one, so GigaThink fans out to 10 perspectives and ProofGuard to 3 "
        f"checks) and a fixed usage of 1,800 input / 600 output tokens. Everything left is the engine: "
        "input coercion, template rendering, the limiter, response parsing and JSON-schema validation, "
        "confidence scoring, traces. Overhead per call = wall time of one `Engine.run_protocol` / LLM calls "
        f"in that run. {s['rounds']} rounds x {s['runs_per_round']} runs per protocol (after {s['warmup']} "
        f"warm-up runs each), `max_concurrency` {s['max_concurrency']}, no event callback. p50 and p95 are "
        "over runs. *Stub* is the time spent inside the benchmark provider itself, included in the overhead.",
        "",
    ]
    rows = []
    for pid, d in ov["protocols"].items():
        st = ", ".join(f"{k} {v}" for k, v in d["statuses"].items())
        rows.append([
            f"`{pid}`", f"{d['calls_per_run']:g}", str(d["runs"]), _f(d["p50_ms"]), _f(d["p95_ms"]), _f(d["mean_ms"]),
            _f(d["p50_ms"] / g, 2), _f(d["cpu_p50_ms"]), _f(d["gc_us_per_call"], 0), _f(d["stub_us_per_call"], 1), st,
        ])
    o = ov["overall"]
    rows.append([
        "**all protocols**", "", str(o["runs"]), f"**{_f(o['p50_ms'])}**", f"**{_f(o['p95_ms'])}**", _f(o["mean_ms"]),
        f"**{_f(o['p50_ms'] / g, 2)}**", _f(o["cpu_p50_ms"]), _f(o["gc_us_per_call"], 0), "", "",
    ])
    out += _table(
        ["Protocol", "LLM calls / run", "Runs", "p50 ms / call", "p95 ms / call", "mean ms / call", "p50 / goal", "CPU p50 ms / call", "GC µs / call", "stub µs / call", "Run status"],
        rows,
        "lrrrrrrrrrl",
    )
    out += [
        "",
        f"Goal: p50 <= {g} ms per call: {_met(ov['met'])}.",
        "",
        "*CPU p50* is the same ratio with the process's CPU time instead of wall time: it leaves out time the "
        "process spent waiting for a core, so when it is well below the wall p50 other processes were "
        "competing for the CPU (on a virtual machine, time taken by the hypervisor still counts as CPU time; "
        "compare the per-round p50s below for the run-to-run spread). *GC* is time inside the garbage collector "
        f"({o['gc_collections']} collections during "
        "the measured runs), included in the overhead.",
        "",
    ]
    rr = [[str(i + 1), _f(p50), _f(p95)] for i, (p50, p95) in enumerate(zip(o["round_p50_ms"], o["round_p95_ms"], strict=True))]
    out += ["Per round (all protocols pooled):", "", *_table(["Round", "p50 ms / call", "p95 ms / call"], rr), ""]
    if prof:
        out += _profile(prof, micro, ov)
    return out


# What is known about a hot spot and what would make it cheaper; shown only for functions that the
# profile of this run puts in its table, keyed by the function name as the table shows it.
HOTSPOT_NOTES = {
    "reasonkit.engine.parsing.schema_errors": (
        "`Engine._parse` validates every reply with a new `jsonschema.Draft202012Validator` built from the "
        "step's output schema. "
        "Building the validator is cheap (see the direct timings); the time is jsonschema's per-keyword "
        "dispatch, which creates an evolved validator for every sub-schema and array item it descends into. "
        "Caching the validator alone therefore saves little. Proposed: compile each step's output schema once "
        "(at load) into a happy-path check for the keywords the protocols use (type, properties, required, "
        "additionalProperties, items, enum, minimum/maximum, minItems/maxItems), and call jsonschema only "
        "when that check fails, to produce the messages, or when a schema uses other keywords."
    ),
    "reasonkit.protocol.template.__init__": (
        "`Engine._run_instance` builds `Template(step.prompt)` and `Template(step.system)` on every call, so "
        "both are parsed again for every item, sample and run. Proposed: parse each step's templates once "
        "(cache the parsed `Template` by source, or keep it on the step)."
    ),
    "reasonkit.engine.result.add": (
        "`Tokens.add` turns its argument into a dict with `model_dump()` on every addition, and "
        "`run_step` in `Engine._run_entry` re-sums the tokens of all steps of the entry each time one "
        "finishes. Proposed: add the four fields directly, and add only the finished step's tokens."
    ),
    "reasonkit.protocol.template.to_text": (
        "Earlier steps' outputs are rendered into later prompts as indented JSON; that is the prompt itself, "
        "not overhead to remove."
    ),
}


def _profile(prof: dict[str, Any], micro: dict[str, Any] | None, ov: dict[str, Any]) -> list[str]:
    out = [
        "#### Where the time goes",
        "",
        f"The same zero-latency workload ({prof['runs_per_protocol']} runs of every protocol, {prof['calls']} "
        f"LLM calls) under **{prof['profiler']}**"
        + (" (sampling every 0.2 ms)" if prof["profiler"] == "pyinstrument" else " (deterministic; C functions' time is given to their Python callers)")
        + ". Self time grouped by where the code lives. The profiler slows everything down, so the shares "
        "are what matter; *est. µs / call* = share x the unprofiled mean overhead per call "
        f"({_f(ov['overall']['mean_ms'] * 1000, 0)} µs). The profiler's own cost per function call makes "
        "small, often-called functions look bigger than they are; the direct timings further down are the "
        "ground truth for the two largest hot spots.",
        "",
    ]
    mean_us = ov["overall"]["mean_ms"] * 1000
    rows = [[a["area"], _f(a["pct"], 1) + " %", _f(a["pct"] * mean_us / 100, 0)] for a in prof["areas"] if a["pct"] >= 0.5]
    out += _table(["Area (self time)", "Share", "est. µs / call"], rows)
    out += [
        "",
        "ReasonKit functions by inclusive time (their callees included; the per-run and per-step driver "
        "coroutines, which include everything, are left out):",
        "",
    ]
    rows = [[f"`{f['function']}`", f"`{f['location']}`", _f(f["pct"], 1) + " %", _f(f["pct"] * mean_us / 100, 0)] for f in prof["functions"]]
    out += _table(["Function", "Where", "Share", "est. µs / call"], rows, "llrr")
    out += [""]
    notes = [(f, HOTSPOT_NOTES[f["function"]]) for f in prof["functions"] if f["function"] in HOTSPOT_NOTES]
    if notes:
        out += ["Hot spots in this table, and what would make them cheaper:", ""]
        out += [f"- `{f['function']}` ({_f(f['pct'], 1)} %): {text}" for f, text in notes]
        areas = {a["area"]: a["pct"] for a in prof["areas"]}
        loop = areas.get("event loop and tasks (anyio, asyncio)")
        if loop:
            out += [
                f"- Event loop and tasks ({_f(loop, 1)} % self time): a task group per run, per protocol and per "
                "`for_each` step, an `anyio.Event` per step, and the limiter, whose `acquire` yields to the loop "
                "on every call even when a slot is free. Spread thin; no single fix."
            ]
        out += [""]
    if micro:
        pc, sh = micro["per_call"], micro["share_pct"]
        out += [
            "Direct timings, without a profiler: call-weighted means over the steps of all protocols, in µs per "
            "LLM call, and their share of the mean engine overhead per call measured right before and after "
            f"them ({_f(micro['engine_us_per_call'], 0)} µs; this machine's speed drifts, so the yardstick is "
            "taken at the same time):",
            "",
            *_table(
                ["Operation", "µs / call", "Share of the engine's time"],
                [
                    ["`schema_errors(obj, schema)` (`reasonkit/engine/parsing.py`), as `Engine._parse` calls it on every reply", _f(pc["schema_errors_us"], 1), _f(sh["schema_errors_us"], 1) + " %"],
                    ["… of which building `Draft202012Validator(schema)`", _f(pc["validator_build_us"], 1), _f(sh["validator_build_us"], 1) + " %"],
                    ["`Template(step.prompt)` + `Template(step.system)` parsing, done again on every call in `Engine._run_instance`", _f(pc["template_parse_us"], 1), _f(sh["template_parse_us"], 1) + " %"],
                ],
                "lrr",
            ),
            "",
        ]
    return out


def _critical(cp: dict[str, Any]) -> list[str]:
    s = cp["settings"]
    g = cp["goal_ratio"]
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
        "entry takes 0 layers. This ignores `max_concurrency`: at 64 the limiter never binds here; at 16 (the "
        "engine's default) it binds only where more than 16 calls could run at once, and the diagnostics "
        "below show the limiter-aware path.",
        "",
    ]
    rows, diag = [], []
    for r in cp["rows"]:
        ran = [k for k, v in (r["entries"] or {}).items() if v["status"] != "skipped"]
        skipped = [k for k, v in (r["entries"] or {}).items() if v["status"] == "skipped"]
        note = "" if r["kind"] == "protocol" else " → ".join(ran) + (f" (skipped: {', '.join(skipped)})" if skipped else "")
        flags = []
        if not r["layers_constant"]:
            flags.append("layers varied")
        if not r["trace_calls_match"]:
            flags.append("trace/provider call counts differ")
        if set(r["statuses"]) != {"complete"}:
            flags.append("status " + ", ".join(f"{k} {v}" for k, v in r["statuses"].items()))
        target = f"{r['kind']} `{r['name']}`"
        ratio = _f(r["ratio_p50"])
        rows.append([
            target,
            str(r["max_concurrency"]),
            f"{r['calls_per_run']:g}",
            str(r["layers"]),
            _f(r["critical_path_ms"], 0),
            _f(r["wall_p50_ms"], 1),
            f"**{ratio}**" if r["name"] == "balanced" and r["kind"] == "profile" else ratio,
            f"{_f(r['ratio_min'])}–{_f(r['ratio_max'])}",
            _f(r["ratio_p50"] / g, 2),
            "; ".join(filter(None, [note, *flags])),
        ])
        diag.append([
            target,
            str(r["max_concurrency"]),
            str(r["peak_in_flight"]),
            _f(r["mean_call_ms"], 2),
            _f(r["ratio_measured_p50"]),
            str(r["layers_limited"]),
            _f(r["ratio_limited_p50"]),
        ])
    out += _table(
        ["Target", "Concurrency", "Calls", "Layers", "Critical path ms", "Wall p50 ms", "Ratio p50", "Ratio range", "Ratio / goal", "Entries run (in chain order)"],
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
        *_table(
            ["Target", "Concurrency", "Peak in flight", "Call ms", "Ratio at call ms", "Layers with the limiter", "Ratio vs limiter-aware path"],
            diag,
            "lrrrrrr",
        ),
        "",
    ]
    bal = [r for r in cp["rows"] if r["kind"] == "profile" and r["name"] == "balanced"]
    if bal:
        out += ["`balanced` per round:", ""]
        hdr = ["Round"] + [f"wall ms @ {r['max_concurrency']}" for r in bal] + [f"ratio @ {r['max_concurrency']}" for r in bal]
        rr = []
        for i in range(len(bal[0]["ratios"])):
            rr.append([str(i + 1)] + [_f(r["wall_ms"][i], 1) for r in bal] + [_f(r["ratios"][i]) for r in bal])
        out += _table(hdr, rr) + [""]
        e = bal[0]["entries"] or {}
        if e:
            spans = ", ".join(f"`{k}` layers {v['start']}–{v['start'] + v['layers']}" for k, v in e.items())
            out += [f"`balanced` critical path by entry: {spans}.", ""]
    return out


def _startup(st: dict[str, Any], it: dict[str, Any] | None) -> list[str]:
    out = ["### 5a. `rk --version`", ""]
    if "error" in st:
        return out + [f"Not measured: {st['error']}.", ""]
    out += [
        "**What it measures.** Wall time of `rk --version` (the installed console script) against "
        "`python -c pass` with the same interpreter, each started as a subprocess. "
        f"{st['warmup']} warm-up runs each, then {st['rounds']} rounds of one run each, rotating which "
        "goes first; bytecode caching on (`PYTHONDONTWRITEBYTECODE` unset for the children). The third "
        "command is the floor for `rk --version`: the interpreter plus the `reasonkit` package, printing the "
        "version without importing the CLI module.",
        "",
        *_table(
            ["Command", "Median ms", "/ python -c pass"],
            [
                [f"`rk --version` (prints `{st['version_output']}`)", _f(st["rk_p50_ms"], 1), _f(st["ratio_of_medians"], 2)],
                ["`python -c pass`", _f(st["python_p50_ms"], 1), "1.00"],
                [f"`{st['floor_command']}` (floor)", _f(st["floor_p50_ms"], 1), _f(st["floor_ratio_of_medians"], 2)],
            ],
        ),
        "",
        *_table(
            ["Ratio rk / python", "Value", "Goal", "Result / goal"],
            [
                ["ratio of the medians", f"**{_f(st['ratio_of_medians'], 2)}**", f"<= {st['goal_ratio']:g}", _f(st["ratio_of_medians"] / st["goal_ratio"], 2)],
                ["median of the per-round ratios", _f(st["ratio_p50"], 2), "", ""],
                ["per-round ratio, 10th–90th percentile", f"{_f(st['ratio_p10'], 2)}–{_f(st['ratio_p90'], 2)}", "", ""],
            ],
        ),
        "",
        f"Goal: ratio <= {st['goal_ratio']:g}: {_met(st['met'])}.",
        "",
        "Per-round ratios: " + ", ".join(_f(x, 2) for x in st["round_ratios"]) + ".",
        "",
    ]
    if it and "error" not in it:
        out += [
            f"`python -X importtime -c \"import {it['module']}\"` (median of {it['runs']} runs): the import takes "
            f"{_f(it['total_ms'], 1)} ms cumulative and loads {it['modules_loaded']} modules that a bare "
            "interpreter does not. Top 5 by cumulative time (a module's cumulative time includes what it "
            "imports, so nested rows overlap):",
            "",
            *_table(
                ["Module", "Cumulative ms", "Self ms", "Imported by"],
                [[f"`{t['module']}`", _f(t["cumulative_ms"], 1), _f(t["self_ms"], 1), f"`{t['imported_by']}`" if t["imported_by"] else ""] for t in it["top"]],
                "lrrl",
            ),
            "",
        ]
        if not st["met"] and any(t["module"] == "click" for t in it["top"]):
            out += [
                "Why the goal is missed, and the proposed fix: the console script imports `reasonkit.cli`, "
                "which imports click (and the other modules above) at module level before click can "
                "answer `--version`. A small entry point that prints `reasonkit.__version__` for "
                "`-V`/`--version` and otherwise imports `reasonkit.cli` would bring `rk --version` to the "
                "floor row above; `rk --help` and the commands would be unchanged.",
                "",
            ]
    elif it:
        out += [f"Import times not measured: {it['error']}.", ""]
    return out


# --------------------------------------------------------------------------------------------------
# Reasons next to missed goals (from this run's own numbers and profiles)
# --------------------------------------------------------------------------------------------------
def _why_provider(pv: dict[str, Any], r: dict[str, Any]) -> str:
    rows = {(x["arm"], x["latency_ms"]): x for x in pv["rows"]}
    a, sdk = rows.get(("reasonkit", r["latency_ms"])), rows.get(("openai_sdk", r["latency_ms"]))
    if not a or not sdk:
        return ""
    return (
        f"ReasonKit's layer adds {_f(a['added_ms'] - sdk['added_ms'], 2)} ms per call over the bare OpenAI SDK it wraps "
        f"(CPU {_f(a['cpu_ms'], 2)} vs {_f(sdk['cpu_ms'], 2)} ms per call); the SDK itself is most of the cost"
    )


def _why_cp(r: dict[str, Any]) -> str:
    if r["peak_in_flight"] >= r["max_concurrency"] and r["ratio_limited_p50"] <= 1.10:
        return (
            f"the limiter's intended waves: {r['max_concurrency']} slots for more parallel calls; against the "
            f"limiter-aware path the ratio is {_f(r['ratio_limited_p50'])} (see 3b)"
        )
    return "see section 3b"


def _import_story(res: dict[str, Any]) -> str:
    it = res.get("serve_importtime")
    if not it or "error" in it:
        return ""
    pk = it.get("by_package") or []
    sdk = sum(p["self_ms"] for p in pk if p["package"] in ("mcp", "mcp_types"))
    return (
        f"importing what `rk serve-mcp` needs takes {_f(it['total_ms'], 0)} ms, {_f(sdk, 0)} ms of it in the MCP SDK's "
        "own modules (`mcp_types` builds pydantic models for two protocol eras at import; `mcp` imports its client too)"
    )


def _stdio_start(res: dict[str, Any]) -> float | None:
    mc = res.get("mcp")
    if mc and mc.get("servers", {}).get("reasonkit"):
        return float(mc["servers"]["reasonkit"]["spawn_p50_ms"])
    sm = res.get("stdio_start")
    if sm and "error" not in sm:
        return float(sm["servers"]["reasonkit"]["spawn_p50_ms"])
    return None


def _why_mcp_start(res: dict[str, Any]) -> str:
    story = _import_story(res)
    return (story + "; see section 5") if story else "see sections 2 and 5"


def _why_mcp_rt(mc: dict[str, Any]) -> str:
    rk = mc["servers"]["reasonkit"]
    st = mc["servers"].get("sequential_thinking") or {}
    tl = mc.get("tools_list") or {}
    parts = [f"the answer is {_f(rk['list_bytes'] / 1024, 1)} KB ({rk['tools']} tools) vs {_f((st.get('list_bytes') or 0) / 1024, 1)} KB (1 tool)"]
    if tl and "error" not in tl:
        parts.append(f"the client parses it in {_f(tl['client_parse_us'] / 1000, 2)} ms")
    prof = mc.get("profile") or {}
    sieve = sum(x["pct"] for x in prof.get("self", []) if "TypeAdapter" in x["name"] or "model_dump" in x["name"])
    if sieve:
        parts.append(f"in the server {_f(sieve, 0)} % of the time is pydantic dump/validate of the result (the SDK's per-request result sieve)")
    return "; ".join(parts)


def _why_load(ld: dict[str, Any]) -> str:
    u = ld["uncached"]
    n = ld["settings"]["calls"]
    cpu = u.get("cpu_ms_per_call")
    txt = ""
    if cpu:
        txt = f"server CPU {_f(cpu, 1)} ms per call x {n} calls on one event loop = {_f(cpu * n / 1000, 1)} s of queueing"
    prof = ld.get("profile") or {}
    tops = []
    callers = prof.get("by_reasonkit_caller", [])
    outside = sum(c["pct"] for c in callers if c["name"].startswith("no ReasonKit"))
    sdk = sum(c["pct"] for c in callers if c["name"].startswith(("OpenAIProvider._once", "_SDKProvider.", "AnthropicProvider._once")))
    store = sum(c["pct"] for c in callers if "reasonkit/store/" in c["name"])
    for pct_, where in sorted([(outside, "MCP SDK HTTP path, uvicorn, h11"), (sdk, "the provider call (OpenAI SDK)"), (store, "the run store")], reverse=True):
        if pct_ >= 3:
            tops.append(f"{_f(pct_, 0)} % {where}")
    if tops:
        txt += "; profile: " + ", ".join(tops)
    return txt + "; see section 4"


def _sdk_cpu(pv: dict[str, Any] | None) -> tuple[float, float] | None:
    """(bare OpenAI SDK, raw HTTP) CPU ms per sequential call at the lowest server latency of section 1."""
    if not pv or "error" in pv:
        return None
    lat0 = min(r["latency_ms"] for r in pv["rows"])
    by = {(r["arm"], r["latency_ms"]): r for r in pv["rows"]}
    sdk, raw = by.get(("openai_sdk", lat0)), by.get(("raw_http", lat0))
    return (sdk["cpu_ms"], raw["cpu_ms"]) if sdk and raw else None


def _sdk_cost_note(pv: dict[str, Any] | None) -> str:
    cost = _sdk_cpu(pv)
    if cost is None:
        return ""
    return f"Section 1 measured the bare SDK at {_f(cost[0], 2)} ms of CPU per call where a raw HTTP POST of the same body costs {_f(cost[1], 2)} ms."


def _why_cached(ld: dict[str, Any]) -> str:
    return "a cached call skips the provider, not the MCP request path and the run store (3 SQLite writes per call); see section 4"


# --------------------------------------------------------------------------------------------------
# Sections 1, 2, 3c, 4, 5b-d
# --------------------------------------------------------------------------------------------------
ARM_ORDER = ("reasonkit", "litellm", "openai_sdk", "raw_http")


def _provider(pv: dict[str, Any], fsc: dict[str, Any] | None) -> list[str]:
    out = ["## 1. Provider layer vs LiteLLM", ""]
    if "error" in pv:
        return out + [f"Not measured: {pv['error']}.", ""]
    s, info = pv["settings"], pv.get("info", {})
    out += [
        "**What it measures.** The same chat-completions request (a system and a user message of about 1.9 KB, a JSON "
        "schema as `response_format`) to the same fake OpenAI-compatible server on 127.0.0.1 "
        "(`bench/fake_openai.py`, its own process, a canned reply after a fixed latency). "
        f"**A** is ReasonKit's provider as the engine gets it: `build_provider(settings)` -> `{info.get('reasonkit_provider')}` "
        f"(retry loop with max_retries {info.get('reasonkit_max_retries')}, circuit breaker "
        f"{'on' if info.get('reasonkit_breaker') else 'off'}, response cache {'on' if info.get('reasonkit_cache') else 'OFF'} "
        "(`ENABLE_CACHE=false`), usage and cost accounting, metrics), `await provider.complete(LLMRequest(...))`. "
        f"**B** is `litellm.acompletion(model=\"openai/...\", api_base=..., ...)` (LiteLLM {info.get('litellm_version')}, "
        "its defaults, its cost calculation included). Two references: the bare OpenAI SDK "
        f"(openai {info.get('openai_version')}, the same for A and B) and a raw HTTP client (the floor: network plus fake "
        f"server). {s['rounds']} rounds after {s['warmup']} warm-up calls per arm; in each round, at each server latency, "
        f"every arm makes {s['calls']} sequential calls, then {s['conc_calls']} calls with {s['concurrency']} in flight, "
        "in a rotating order. *Added* = median wall time per call - the server's latency; *layer* = median - the raw "
        "floor's median; *CPU* = this process's CPU time per sequential call (all threads).",
        "",
    ]
    rows = []
    for r in pv["rows"]:
        rows.append([
            pv["labels"].get(r["arm"], r["arm"]), f"{r['latency_ms']:g}", _f(r["p50_ms"], 2), _f(r["p99_ms"], 2), f"**{_f(r['added_ms'], 2)}**" if r["arm"] in ("reasonkit", "litellm") else _f(r["added_ms"], 2),
            _f(r["layer_ms"], 2), _f(r["cpu_ms"], 2), _f(r["conc_throughput"], 0), _f(r["conc_p50_ms"], 1), _f(r["conc_p99_ms"], 1),
        ])
    out += _table(["Arm", "Server ms", "p50 ms", "p99 ms", "Added ms", "Layer ms", "CPU ms / call", f"Calls/s at {s['concurrency']} in flight", "p50 ms in flight", "p99 ms in flight"], rows, "lrrrrrrrrr")
    out += ["", "A / B per round (ReasonKit / LiteLLM; below 1: ReasonKit costs less):", ""]
    rr = []
    for r in pv["ratios"]:
        rr.append([f"{r['latency_ms']:g} ms", ", ".join(_f(x, 2) for x in r["added_ratio_rounds"]), f"**{_f(r['added_ratio'], 2)}**", _f(r["layer_ratio"], 2), _f(r["cpu_ratio"], 2),
                   ", ".join(_f(x, 2) for x in r["conc_time_ratio_rounds"]), f"**{_f(r['conc_time_ratio'], 2)}**"])
    out += _table(["Server latency", "Added-latency ratio per round", "Median", "Layer ratio", "CPU ratio", "Time ratio at 50 in flight per round", "Median"], rr, "lllrrll")
    out += ["", f"Goal: ReasonKit / LiteLLM < {pv['goal_ratio']:g}: {_met(pv['met'])}.", ""]
    by = {(r["arm"], r["latency_ms"]): r for r in pv["rows"]}
    lat0 = min(r["latency_ms"] for r in pv["rows"])
    a, sdk, raw = by.get(("reasonkit", lat0)), by.get(("openai_sdk", lat0)), by.get(("raw_http", lat0))
    if a and sdk and raw:
        out += [
            f"**Where the time goes.** At {lat0:g} ms, ReasonKit's own layer (resilience, accounting, metrics) costs "
            f"{_f(a['added_ms'] - sdk['added_ms'], 2)} ms per call over the bare OpenAI SDK it wraps (CPU {_f(a['cpu_ms'], 2)} vs "
            f"{_f(sdk['cpu_ms'], 2)} ms); the SDK itself costs {_f(sdk['cpu_ms'], 2)} ms of CPU per call where a raw HTTP POST of the "
            f"same body costs {_f(raw['cpu_ms'], 2)} ms. The SDK's request path (parameter transforms, httpx2 and httpcore2 with an "
            "anyio cancel scope around every socket operation, pydantic parsing of the reply) is therefore almost all of A's "
            "cost; LiteLLM calls the same SDK for `openai/` models and adds its own logging and cost calculation. Proposed: a direct "
            "HTTP path for OpenAI-compatible chat completions in `reasonkit/providers/sdk.py` would take most of the "
            f"{_f(sdk['cpu_ms'] - raw['cpu_ms'], 1)} ms off every LLM call (see section 4, where it is the largest share of the "
            "server's CPU under load).",
            "",
        ]
    if fsc and "error" not in fsc:
        out += [
            f"**The fake server's own cost.** One request with the raw client, median of {fsc['rounds']} rounds of {fsc['n']}: "
            f"`bench/fake_openai.py` (own process) {_f(fsc['fake_openai_ms'], 3)} ms; `tests/fakes/fake_llm.py`'s FakeLLM "
            f"(uvicorn in a thread of the client's process, as the tests run it) {_f(fsc['fakellm_ms'], 2)} ms. FakeLLM's "
            "cost would be common to A and B but would drown the difference, and its thread would take the "
            "interpreter lock from the client being measured; hence the dedicated server.",
            "",
        ]
    return out


def _mcp(mc: dict[str, Any], it: dict[str, Any] | None = None) -> list[str]:
    out = ["## 2. MCP server vs the official sequential-thinking server (stdio)", ""]
    if "error" in mc:
        return out + [f"Not measured: {mc['error']}.", ""]
    s = mc["settings"]
    node = mc.get("node") or {}
    out += [
        "**What it measures.** Both servers started by the same Python MCP client, `mcp.Client(stdio_client(...), "
        "mode=\"legacy\", cache=None)` (the initialize handshake, which the Node server speaks; the client's response "
        "cache off so every call reaches the server). *Spawn to tools/list*: entering the client (the process spawn) "
        f"to the parsed first `tools/list`. *Round trip*: {s['warm']} more `tools/list` calls on the warm session. "
        f"{s['rounds']} rounds, alternating which server goes first. *Raw* columns: the same exchange as JSON-RPC lines "
        f"on the pipes without the SDK client ({s['raw_rounds']} rounds), i.e. without the client's parsing. ReasonKit runs "
        "as `rk serve-mcp` (clean HOME, no config, built-in protocols); the peer as "
        f"`node dist/index.js` (Node {node.get('node_version', '?')}, "
        f"@modelcontextprotocol/server-sequential-thinking {node.get('server_version', '?')}, from bench/.node/).",
        "",
    ]
    rows = []
    for name, d in mc["servers"].items():
        label = "ReasonKit `rk serve-mcp`" if name == "reasonkit" else "sequential-thinking (Node)"
        rows.append([label, str(d["tools"]), _f(d["spawn_p50_ms"], 0), f"{_f(d['spawn_min_ms'], 0)}–{_f(d['spawn_max_ms'], 0)}", _f(d["rt_p50_ms"], 2), _f(d["rt_p99_ms"], 2),
                     _f(d["close_p50_ms"], 0), _f(d["raw_list_p50_ms"], 0), _f(d["raw_rt_p50_ms"], 2), _f((d["list_bytes"] or 0) / 1024, 1)])
    out += _table(["Server", "Tools", "Spawn to tools/list ms (p50)", "range", "Round trip ms p50", "p99", "Close ms", "Raw spawn to list ms", "Raw round trip ms", "tools/list KB"], rows, "lrrrrrrrrr")
    ra = mc.get("ratios")
    if ra:
        gl = mc["goals"]
        out += [
            "",
            *_table(
                ["Ratio ReasonKit / Node", "Per round", "Median", "Goal", "Status"],
                [
                    ["spawn to first tools/list", ", ".join(_f(x, 2) for x in ra["spawn_rounds"]), f"**{_f(ra['spawn'], 2)}**", f"<= {gl['startup_ratio']:g}", _met(mc["met"]["startup"])],
                    ["warm tools/list round trip (client)", ", ".join(_f(x, 2) for x in ra["roundtrip_rounds"]), f"**{_f(ra['roundtrip'], 2)}**", f"< {gl['roundtrip_ratio']:g}", _met(mc["met"]["roundtrip"])],
                    ["warm round trip, raw (no client parsing)", "", _f(ra["raw_roundtrip"], 2), "", ""],
                ],
                "lllll",
            ),
            "",
        ]
    tl = mc.get("tools_list")
    notes = []
    if ra and not mc["met"]["startup"]:
        notes.append(f"- **Start-up** ({_f(ra['spawn'], 2)}x): {_import_story_for_mcp(mc, it)}")
    if ra and not mc["met"]["roundtrip"]:
        txt = (
            f"- **Round trip** ({_f(ra['roundtrip'], 2)}x): ReasonKit's `tools/list` answer is {_f(mc['servers']['reasonkit']['list_bytes'] / 1024, 1)} KB "
            f"({mc['servers']['reasonkit']['tools']} tools, each with its input schema, the shared output schema and a description "
            "that says when to use it) against one tool in 4.6 KB. "
        )
        rk_s, st_s = mc["servers"]["reasonkit"], mc["servers"].get("sequential_thinking") or {}
        txt += (
            f"Server side (raw round trip) {_f(rk_s['raw_rt_p50_ms'], 2)} ms vs {_f(st_s.get('raw_rt_p50_ms'), 2)} ms; the Python client adds "
            f"{_f(rk_s['rt_p50_ms'] - rk_s['raw_rt_p50_ms'], 2)} ms vs {_f((st_s.get('rt_p50_ms') or 0) - (st_s.get('raw_rt_p50_ms') or 0), 2)} ms on top "
            "(reading the longer line through its stdio threads, parsing and validating it). "
        )
        if tl and "error" not in tl:
            txt += (
                f"In-process timings of the same result: building the model {_f(tl['build_us'], 0)} µs, serialising it once "
                f"{_f(tl['serialise_us'], 0)} µs, validating it as the client does {_f(tl['client_parse_us'], 0)} µs. "
            )
        prof = mc.get("profile") or {}
        if prof.get("self"):
            top = ", ".join(f"`{x['name']}` {_f(x['pct'], 0)} %" for x in prof["self"][:4])
            txt += (
                f"py-spy on `rk serve-mcp` answering warm `tools/list` calls (time holding the interpreter lock): {top}. The SDK's "
                "`ServerRunner._serialize` passes every result through `mcp_types.methods.serialize_server_result` "
                "(`model_dump`, then `validate_python` against the protocol era's schema, then `dump_python` again), so the "
                "cost grows with the size of the answer. "
            )
        txt += (
            "Proposed fix: shrink the answer — the output schema (2.5 KB) is repeated in each of the 7 tools and is 53 % of "
            "the bytes; drop its per-field descriptions (the tool description already explains the result) or trim the "
            "per-step summary from it. A fix in the SDK (skip re-validating results built from its own typed models, or "
            "cache the serialised `tools/list` until the list changes) would help every server."
        )
        notes.append(txt)
    if notes:
        out += ["Why the goals are missed, from this run's profile, and the proposed fixes:", "", *notes, ""]
    prof = mc.get("profile")
    if prof and "error" not in prof:
        out += _spy_tables(prof, "`rk serve-mcp` answering warm `tools/list` calls over stdio")
    elif prof:
        out += [f"(Server profile not taken: {prof['error']}.)", ""]
    return out


def _import_story_for_mcp(mc: dict[str, Any], it: dict[str, Any] | None = None) -> str:
    rk = mc["servers"]["reasonkit"]
    share = ""
    if it and "error" not in it and it.get("total_ms"):
        share = f" Imports alone take {_f(it['total_ms'], 0)} ms of it (section 5b)"
        pk = it.get("package_self_ms") or {}
        if pk:
            ours = sum(v for k, v in pk.items() if k.startswith("reasonkit"))
            sdk = sum(v for k, v in pk.items() if k in ("mcp", "mcp_types"))
            share += (f": the MCP SDK's own modules (`mcp`, `mcp_types`) {_f(sdk, 0)} ms of self time, ReasonKit's modules {_f(ours, 0)} ms, "
                      "the rest pydantic, loguru, httpx, anyio, starlette and the standard library they pull in. Even a ReasonKit that "
                      "imported nothing of its own would stay above 2x the Node server while the SDK costs that much")
        share += "."
    return (
        f"the raw exchange shows the same start-up ({_f(rk['raw_list_p50_ms'], 0)} ms to the first tools/list answer), so it is the "
        f"server process's start, not the client.{share} The Node server loads "
        "one bundled file and its SDK; `rk serve-mcp` imports the MCP Python SDK (whose `mcp_types` package builds "
        "pydantic models for two protocol eras at import), pydantic, loguru, jsonschema and its own modules, loads "
        "and validates the protocol TOML files and opens the run store. Proposed fixes: defer what the first "
        "`tools/list` does not need (the store, the engine, jsonschema, prometheus) until the first `tools/call`; the MCP "
        "SDK's import cost needs an upstream change (lazy era models)."
    )


def _spy_tables(prof: dict[str, Any], what: str) -> list[str]:
    out = [
        f"py-spy profile of {what} ({prof['samples']} samples of the thread holding the interpreter lock, `--gil`):",
        "",
        *_table(["Area (self time)", "Share"], [[a["name"], _f(a["pct"], 1) + " %"] for a in prof["areas"][:12]], "lr"),
        "",
        *_table(["Hottest functions (self time)", "Share"], [[f"`{a['name']}`", _f(a["pct"], 1) + " %"] for a in prof["self"][:10]], "lr"),
        "",
    ]
    if prof.get("by_reasonkit_caller"):
        out += [
            "Each sample charged to the innermost ReasonKit function on its stack (the ReasonKit code that caused the work, in its own "
            "code or in a library it called):",
            "",
            *_table(["ReasonKit caller", "Share"], [[f"`{a['name']}`" if "(" in a["name"] and not a["name"].startswith("no ") else a["name"], _f(a["pct"], 1) + " %"] for a in prof["by_reasonkit_caller"][:10]], "lr"),
            "",
        ]
    return out


def _memory(mem: dict[str, Any]) -> list[str]:
    s = mem["settings"]
    out = [
        "### 3c. Memory per concurrent run",
        "",
        f"**What it measures.** N runs at once (one `Engine` per run, as the MCP server makes one per tool call; max_concurrency "
        f"{s['max_concurrency']} each; one shared in-process provider with {s['latency_ms']:g} ms per call, so all N runs are alive "
        "together). *Peak*: tracemalloc's peak of Python allocations above the baseline while they ran, / N. *Retained*: "
        "what the N finished `RunResult`s (their full traces) still hold, / N. *RSS*: growth of the process's resident set "
        "(VmHWM, reset before each batch) / N; it counts only memory the process did not already have (freed memory from "
        "an earlier batch is reused), so it can read lower than the peak.",
        "",
    ]
    rows = [[f"{r['kind']} `{r['name']}`", str(r["concurrent_runs"]), f"{r['calls_per_run']:g}", str(r["peak_in_flight"]), _f(r["wall_ms"], 0), _f(r["peak_kb_per_run"], 0), _f(r["retained_kb_per_run"], 0),
             _f(r["rss_kb_per_run"], 0) if r["rss_kb_per_run"] is not None else "n/a"] for r in mem["rows"]]
    out += _table(["Target", "Runs at once", "LLM calls / run", "Peak calls in flight", "Wall ms", "Peak KB / run", "Retained KB / run", "RSS KB / run"], rows)
    return out + ["", "No goal is set for memory; 200 concurrent `balanced` runs need about 200 x the peak above.", ""]


def _load(ld: dict[str, Any], pv: dict[str, Any] | None = None) -> list[str]:
    out = ["## 4. Server under load (streamable HTTP)", ""]
    if "error" in ld:
        return out + [f"Not measured: {ld['error']}.", ""]
    s, gl = ld["settings"], ld["goals"]
    out += [
        "**What it measures.** `rk serve-mcp --port N` as a subprocess with default settings (stateless streamable HTTP, "
        "response cache on, run store on, loopback bind), a single-step user protocol `bench_one` (one LLM call per "
        "tool call; step temperature 0, so the response cache applies) in a temporary `[protocols] dirs`, and "
        f"`OPENAI_BASE_URL` at the fake server (own process) answering after **{s['latency_ms']:g} ms**. The load generator "
        "sends raw JSON-RPC `tools/call` POSTs to `/mcp` (`bench/rawhttp.py`, handshake-era `MCP-Protocol-Version: "
        f"{s['protocol_version']}`; the SDK's `mcp.Client` would add an initialize exchange and milliseconds of client CPU per call "
        "on the same two cores, and httpx's pool costs milliseconds per request at this concurrency). One call through "
        f"`mcp.Client` over streamable HTTP checks the server first: {'ok' if (ld.get('sdk_client_check') or {}).get('ok') else 'FAILED'}. "
        f"{s['rounds']} rounds; each round fires {s['calls']} calls at once per arm, arms alternating: *uncached* (distinct "
        "queries: a cache miss and one LLM call each), *cached* (a query whose reply is cached: no LLM call), *faults* (as "
        f"uncached while the fake answers HTTP 500 to every {s['fail_every']}th request). Overhead per call = wall time - LLM "
        "layers x latency (1 for bench_one, 0 when cached). *Server CPU* = the server process's CPU time during the burst / "
        "calls. Peak RSS: the server's VmHWM (reset before each arm) and a 10 ms RSS sampler.",
        "",
    ]
    rows = []
    for arm, label in (("uncached", "uncached (cache miss, 1 LLM call)"), ("cached", "cached (no LLM call)"), ("faults", f"uncached, every {s['fail_every']}th provider reply a 500")):
        d = ld[arm]
        rows.append([label, str(d["n"]), str(d["answered"]), str(d["errors"]), _f(d["overhead_p50_ms"], 0), _f(d["overhead_p90_ms"], 0), f"**{_f(d['overhead_p99_ms'], 0)}**", _f(d["overhead_max_ms"], 0),
                     _f(d["cpu_ms_per_call"], 2), _f(d["rss_peak_mb"], 0), str(d["provider_requests"]), str(d["injected_500s"])])
    so = ld.get("store_off")
    if so and "error" not in so:
        rows.append(["diagnostic: uncached with `[storage] save_runs = false`", str(so["n"]), str(so["n"] - so["errors"]), str(so["errors"]), _f(so["overhead_p50_ms"], 0), _f(so["overhead_p90_ms"], 0), _f(so["overhead_p99_ms"], 0), _f(so["overhead_max_ms"], 0), _f(so["cpu_ms_per_call"], 2), "", "", ""])
    for key, label in (("alone_uncached", "alone: one call at a time, uncached"), ("alone_cached", "alone: one call at a time, cached")):
        d = ld[key]
        rows.append([label, str(d["n"]), str(d["n"] - d["errors"]), str(d["errors"]), _f(d["overhead_p50_ms"], 2), _f(d["overhead_p90_ms"], 2), _f(d["overhead_p99_ms"], 2), _f(d["overhead_max_ms"], 2), "", "", "", ""])
    fl = ld["load_generator_floor"]
    rows.append([f"floor: the load generator alone, {s['calls']} POSTs at once to the fake provider", str(fl["n"]), "", "", _f(fl["overhead_p50_ms"], 0), _f(fl["overhead_p90_ms"], 0), _f(fl["overhead_p99_ms"], 0), _f(fl["overhead_max_ms"], 0), "", "", "", ""])
    out += _table(["Arm", "Calls", "Answered", "Errors", "Overhead p50 ms", "p90", "p99", "max", "Server CPU ms / call", "Peak RSS MB", "Provider requests", "Injected 500s"], rows, "lrrrrrrrrrrr")
    met = ld["met"]
    out += [
        "",
        f"Idle RSS after start: {_f(ld.get('rss_idle_mb'), 0)} MB; after warm-up: {_f(ld.get('rss_warm_mb'), 0)} MB. "
        f"Goals: errors 0: {_met(met['errors'])}; p99 overhead <= {gl['p99_overhead_ms']:g} ms: {_met(met['p99'])}; peak RSS <= "
        f"{gl['peak_rss_mb']:g} MB: {_met(met['rss'])}; cached call <= {gl['cached_call_ms']:g} ms (alone, p50): {_met(met['cached'])}.",
        "",
        "Per round:",
        "",
    ]
    rr = []
    for arm in ("uncached", "cached", "faults"):
        for i, r in enumerate(ld[arm]["rounds"]):
            rr.append([str(i + 1), arm, _f(r["overhead_p50_ms"], 0), _f(r["overhead_p99_ms"], 0), str(r["errors"]), _f(r["burst_s"], 2), str(r["provider_requests"]), str(r["injected_500s"])])
    rr.sort(key=lambda x: (int(x[0]), x[1]))
    out += _table(["Round", "Arm", "Overhead p50 ms", "p99 ms", "Errors", "Burst s", "Provider requests", "Injected 500s"], rr) + [""]
    f = ld["faults"]
    out += [
        f"With faults, {f['answered']} of {f['n']} calls answered and {f['errors']} failed: the provider's retry loop "
        f"(max_retries 3, backoff from 0.5 s with jitter) absorbed the {f['injected_500s']} injected 500s "
        f"({f['provider_requests']} provider requests for {f['n']} calls); the retried calls are the slow tail.",
        "",
    ]
    if not met["p99"] or not met["cached"]:
        u = ld["uncached"]
        cpu = u.get("cpu_ms_per_call") or 0
        txt = [
            "**Why the p99 goal is missed.** The server runs one event loop in one process. Every call costs "
            f"{_f(cpu, 1)} ms of server CPU (uncached; {_f(ld['cached'].get('cpu_ms_per_call'), 1)} ms cached), so {s['calls']} calls "
            f"arriving at once queue behind about {_f(cpu * s['calls'] / 1000, 1)} s of work, on a machine whose second core also runs "
            "the load generator and the fake provider. Alone, a call costs "
            f"{_f(ld['alone_uncached']['overhead_p50_ms'], 1)} ms over the provider (p50). A p99 of 50 ms at 200 in flight would need "
            "about 0.25 ms of CPU per call, or more server processes: replicas behind a load balancer (stateless HTTP "
            "lets any replica answer; `[server] workers` is not implemented). The profile of the uncached bursts below shows where the CPU goes:",
            "",
        ]
        prof = ld.get("profile") or {}
        so = ld.get("store_off")
        store_done = sdk_done = False
        provider_callers = ("OpenAIProvider._once", "_SDKProvider.", "AnthropicProvider._once")
        for c in prof.get("by_reasonkit_caller", []):
            if c["pct"] < 3:
                continue
            name = c["name"]
            if name.startswith(provider_callers):
                if sdk_done:
                    continue
                sdk_done = True
                group = [x for x in prof["by_reasonkit_caller"] if x["name"].startswith(provider_callers)]
                c = {"name": " + ".join(x["name"].split(" (")[0] for x in group) + " (reasonkit/providers/sdk.py)", "pct": sum(x["pct"] for x in group), "leaves": c.get("leaves", [])}
                name = "OpenAIProvider._once"
            leaves = ", ".join(f"`{x['name']}` {_f(x['pct'], 0)} %" for x in c.get("leaves", [])[:3])
            where = "outside any ReasonKit frame" if name.startswith("no ReasonKit") else f"under `{c['name']}`"
            head = f"- {_f(c['pct'], 0)} % {where}" + (f" (hottest: {leaves})" if leaves else "") + ": "
            if name.startswith("no ReasonKit"):
                txt.append(head + "the MCP SDK's stateless streamable-HTTP path (per request a new transport, task group and memory "
                           "streams, and an OpenTelemetry span even with the no-op tracer), uvicorn and h11. Proposed: upstream (a lighter "
                           "stateless path in the SDK); on our side only more processes help.")
            elif name.startswith("OpenAIProvider._once"):
                txt.append(head + "the OpenAI SDK's own request path: parameter transforms, httpx2/httpcore2 with an anyio cancel "
                           "scope around every socket operation, pydantic parsing of the reply. " + _sdk_cost_note(pv) +
                           " Proposed fix: a direct HTTP path for OpenAI-compatible chat completions in `reasonkit/providers/sdk.py` "
                           "(one POST of the JSON body on a shared httpx connection pool, `json.loads` of the reply, the SDK kept for "
                           "its error classes); the largest single lever in sections 1 and 4.")
            elif "reasonkit/store/" in name and not store_done:
                store_done = True
                store = sum(x["pct"] for x in prof["by_reasonkit_caller"] if "reasonkit/store/" in x["name"])
                diag = ""
                if so and "error" not in so and so.get("cpu_ms_per_call") and cpu:
                    gain = 1 - so["cpu_ms_per_call"] / cpu
                    diag = (f" The diagnostic without the run store used {_f(so['cpu_ms_per_call'], 1)} ms of CPU per call against {_f(cpu, 1)} "
                            f"(p99 {_f(so['overhead_p99_ms'], 0)} vs {_f(u['overhead_p99_ms'], 0)} ms)" +
                            (": a measurable share." if gain > 0.1 else ": no measurable gain in this run, so the store is not what limits this test."))
                txt.append(f"- {_f(store, 0)} % in the run store (`reasonkit/store/sqlite.py`" + (f"; hottest: {leaves}" if leaves else "") + "): three write transactions per call "
                           "(start, step snapshot, final), each in a worker thread, `RunStore._connect` opening a new SQLite connection "
                           "whenever the pool (`pool_size = 4`) is empty (at 200 calls in flight it mostly is), and the whole trace "
                           "JSON-encoded for every snapshot." + diag + " Proposed fix: one writer thread per store with a queue that keeps "
                           "only the newest snapshot per run, and a pool as large as anyio's worker-thread limit (40).")
            elif name.startswith("SecurityMiddleware") or name.startswith("rejection"):
                txt.append(head + "the inbound-security middleware (`reasonkit/server/security.py`) on every request.")
        if len(txt) > 2:
            out += txt + [""]
        if not met["cached"]:
            out += [
                f"**Why the cached-call goal is missed.** {_why_cached(ld)}: alone, a cached call takes "
                f"{_f(ld['alone_cached']['wall_p50_ms'], 2)} ms end to end over HTTP, of which the MCP request path and the "
                "three run-store writes are most.",
                "",
            ]
    prof = ld.get("profile")
    if prof and "error" not in prof:
        out += _spy_tables(prof, f"`rk serve-mcp --port` during three more uncached bursts of {s['calls']} calls")
    elif prof:
        out += [f"(Server profile not taken: {prof['error']}.)", ""]
    return out


def _startup_serve(si: dict[str, Any] | None, it: dict[str, Any] | None, res: dict[str, Any]) -> list[str]:
    out = ["### 5b. `rk serve-mcp` imports", ""]
    if it and "error" not in it:
        out += [
            f"`python -X importtime` over a whole `rk serve-mcp` start on stdio (stdin at end of file, so it starts, reads EOF "
            f"and exits; median of {it['runs']} runs): {_f(it['total_ms'], 0)} ms of imports, {it['modules_loaded']} modules a "
            "bare interpreter does not load. Self time by package (whose code runs at import):",
            "",
            *_table(["Package", "Self ms"], [[f"`{p['package']}`", _f(p["self_ms"], 1)] for p in it["by_package"]], "lr"),
            "",
            "Slowest single modules (self time):",
            "",
            *_table(["Module", "Self ms", "Imported by"], [[f"`{t['module']}`", _f(t["self_ms"], 1), f"`{t['imported_by']}`" if t["imported_by"] else ""] for t in it["top_self"]], "lrl"),
            "",
        ]
    elif it:
        out += [f"Import times not measured: {it['error']}.", ""]
    if si and "error" not in si:
        out += [
            f"The same top-level imports as one command, `python -c \"import {', '.join(si['modules'][:4])}, ...\"` "
            f"({len(si['modules'])} modules), against `python -c pass`, {si['rounds']} alternated rounds: "
            f"{_f(si['imports_p50_ms'], 0)} ms vs {_f(si['python_p50_ms'], 1)} ms, ratio of medians **{_f(si['ratio_of_medians'], 1)}** "
            f"(per round: {', '.join(_f(x, 1) for x in si['round_ratios'])}). No goal is set for this ratio; it bounds the stdio start below.",
            "",
        ]
    ss = _stdio_start(res)
    if ss is not None:
        ok = ss <= 1000
        src = "section 2's rounds" if res.get("mcp") and res["mcp"].get("servers") else "its own rounds (section 2 not run)"
        out += [
            "### 5c. `rk serve-mcp` stdio: spawn to first `tools/list`",
            "",
            f"Median {_f(ss, 0)} ms (from {src}; through `mcp.Client` over stdio). Issue 3's goal <= 1 s: {_met(ok)}."
            + ("" if ok else " " + _why_mcp_start(res) + "."),
            "",
        ]
    return out


def _machine_rows(res: dict[str, Any]) -> list[list[str]]:
    m = res["machine"]
    rows = [
        ["CPU", m["cpu"]],
        ["Cores", f"{m['cores_logical']} logical, {m['cores_usable']} usable by this process"],
        ["Python", f"{m['python']} (`{m['python_executable']}`)"],
        ["Platform", m["platform"]],
        ["Load average at start", ", ".join(str(x) for x in m["load_avg_at_start"]) if m["load_avg_at_start"] else "n/a"],
    ]
    if res.get("load_avg_at_end"):
        rows.append(["Load average at end", ", ".join(str(x) for x in res["load_avg_at_end"])])
    rows.append(["ReasonKit", f"{m['reasonkit']}" + (f", commit {m['commit']}" if m["commit"] else "")])
    env = res.get("environment") or {}
    if env:
        rows.append(["Bench environment", ", ".join(f"{k} {v}" for k, v in env.items())])
    rows.append(["Date", m["date"]])
    return rows


def render_markdown(res: dict[str, Any], chart: str | None = None) -> str:
    """The report; `chart` is the chart image's path relative to the report (None: no chart)."""
    m = res["machine"]
    setting = res["setting"]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m bench`; do not edit by hand, re-run the command. -->",
        "",
        f"Generated by `{res['command']}` on {m['date']} ({setting} setting, "
        f"{res['elapsed_s']:.0f} s). Numbers are from one run on the machine below, with the peers measured in the same "
        "run; they move with the machine and its load, so compare the ratios rather than absolute times.",
        "",
        "## Machine",
        "",
        *_table(["", ""], _machine_rows(res), "ll"),
        "",
    ]
    lines += _summary(res)
    if chart:
        lines += [f"![Benchmark chart: provider layer, MCP stdio, server under load, start-up]({chart})", ""]
    if res.get("provider"):
        lines += _provider(res["provider"], res.get("fake_server_cost"))
    if res.get("mcp"):
        lines += _mcp(res["mcp"], res.get("serve_importtime"))
    if res.get("overhead") or res.get("critical_path") or res.get("memory"):
        lines += ["## 3. Engine", ""]
    if res.get("overhead"):
        lines += _overhead(res["overhead"], res.get("profile"), res.get("hotspots"))
    if res.get("critical_path"):
        lines += _critical(res["critical_path"])
    if res.get("memory"):
        lines += _memory(res["memory"])
    if res.get("load"):
        lines += _load(res["load"], res.get("provider"))
    if res.get("startup") or res.get("serve_importtime") or res.get("serve_import"):
        lines += ["## 5. Start-up", ""]
    if res.get("startup"):
        lines += _startup(res["startup"], res.get("importtime"))
    if res.get("serve_importtime") or res.get("serve_import") or res.get("stdio_start"):
        lines += _startup_serve(res.get("serve_import"), res.get("serve_importtime"), res)
    lines += [
        "## How to reproduce",
        "",
        "From the repository root of a fresh checkout (Python >= 3.11 and `npm` on PATH; nothing else):",
        "",
        "```sh",
        "python3 -m bench                    # full run (4-5 minutes on 2 cores after a one-time install), rewrites docs/benchmarks.md and .png",
        "python3 -m bench --quick --out -    # tiny setting, report on stdout (a smoke run, not a measurement)",
        "python3 -m bench --only provider    # one section (repeatable): provider, mcp, overhead, critical-path, memory, load, startup",
        "python3 -m bench --json bench.json  # also write the raw per-run numbers",
        "```",
        "",
        "What installs what, where (all of it gitignored, none of it in the product's dependencies):",
        "",
        "- `.bench-venv/`: created on the first run; `pip install -e . -r bench/requirements.txt` puts the product (editable, "
        "so the numbers are for this checkout) next to LiteLLM, matplotlib and py-spy. The command then re-runs itself inside "
        "it. A stamp of bench/requirements.txt and pyproject.toml decides when to re-install. `--no-venv` stays in the current "
        "interpreter (sections that need LiteLLM then say they were not measured); `--no-install` never installs.",
        "- `bench/.node/`: `npm install` of `node@22` (Node 22 as a registry package) and "
        "`@modelcontextprotocol/server-sequential-thinking`, pinned in bench/env.py, when section 2 runs.",
        "",
        "py-spy attaches to the server subprocesses for the profiles in sections 2 and 4; that needs ptrace rights (root, or "
        "`kernel.yama.ptrace_scope = 0`); without them the report says the profile was not taken. The hot-spot table of section "
        "3a uses pyinstrument when it is importable and cProfile otherwise (`--profiler`). Nothing asserts on speed: "
        "`tests/bench/test_bench_smoke.py` only checks that the harness runs on a tiny setting and returns well-formed results.",
        "",
        "## What it measures, and what it does not",
        "",
        "Sections 1, 2 and 4 go through real sockets and pipes on 127.0.0.1, with every server in its own process and a fake "
        "LLM with a fixed latency; real providers add their own latency and its variance. Section 3 is in-process (no network, "
        "no SDK: the provider hands over a ready object), so it isolates the engine's own cost. Section 5 is the cold start a "
        "user or an MCP client pays for every `rk` process. On a 2-core machine the load generator, the fake provider and the "
        "server share the cores, so section 4's numbers under load are upper bounds for a server with a core of its own.",
        "",
    ]
    return "\n".join(lines)
