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


def _summary(res: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []
    ov = res.get("overhead")
    if ov:
        o = ov["overall"]
        g = ov["goal_ms"]
        rows.append(["Orchestration overhead per LLM call, p50 (all protocols)", f"{_f(o['p50_ms'])} ms", f"<= {g} ms", f"{_f(o['p50_ms'] / g, 2)}", _met(ov["met"])])
        rows.append(["Orchestration overhead per LLM call, p95 (all protocols)", f"{_f(o['p95_ms'])} ms", "(no goal)", "", ""])
    cp = res.get("critical_path")
    if cp:
        g = cp["goal_ratio"]
        for r in cp["rows"]:
            if r["kind"] == "profile" and r["name"] == "balanced":
                rows.append([f"`balanced` profile: wall / critical path, max_concurrency {r['max_concurrency']}", _f(r["ratio_p50"]), f"<= {g:.2f}", _f(r["ratio_p50"] / g, 2), _met(r["met"])])
        prof_rows = [r for r in cp["rows"] if r["kind"] == "profile"]
        for conc in cp["settings"]["concurrencies"]:
            sel = [r for r in prof_rows if r["max_concurrency"] == conc]
            if sel:
                worst = max(sel, key=lambda r: r["ratio_p50"])
                rows.append([f"Worst profile (`{worst['name']}`): wall / critical path, max_concurrency {conc}", _f(worst["ratio_p50"]), f"<= {g:.2f}", _f(worst["ratio_p50"] / g, 2), _met(worst["met"])])
    st = res.get("startup")
    if st and "error" not in st:
        rows.append(["`rk --version` / `python -c pass` (ratio of medians)", _f(st["ratio_of_medians"], 2), f"<= {st['goal_ratio']:g}", _f(st["ratio_of_medians"] / st["goal_ratio"], 2), _met(st["met"])])
    if not rows:
        return []
    return ["## Summary", "", *_table(["Measure", "Result", "Goal", "Result / goal", "Status"], rows, "lrrrl"), "",
            "A *result / goal* below 1.00 means the goal is met.", ""]


def _overhead(ov: dict[str, Any], prof: dict[str, Any] | None, micro: dict[str, Any] | None) -> list[str]:
    s = ov["settings"]
    g = ov["goal_ms"]
    out = [
        "## 1. Orchestration overhead per LLM call",
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
        "### Where the time goes",
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
        "## 2. Profile wall time vs critical path",
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
        "entry takes 0 layers. This ignores `max_concurrency`: at 64 the limiter never binds here, at the "
        "default 8 the ratio also shows what the limiter costs (GigaThink's 10 parallel items need two "
        "waves; see the diagnostics below).",
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
    out = ["## 3. CLI start-up", ""]
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


def render_markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    setting = res["setting"]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m bench`; do not edit by hand, re-run the command. -->",
        "",
        f"Generated by `{res['command']}` on {m['date']} ({setting} setting, "
        f"{res['elapsed_s']:.0f} s). Numbers are from one run on the machine below; they move with the "
        "machine and its load, so compare ratios rather than absolute times.",
        "",
        "## Machine",
        "",
        *_table(
            ["", ""],
            [
                ["CPU", m["cpu"]],
                ["Cores", f"{m['cores_logical']} logical, {m['cores_usable']} usable by this process"],
                ["Python", f"{m['python']} (`{m['python_executable']}`)"],
                ["Platform", m["platform"]],
                ["Load average at start", ", ".join(str(x) for x in m["load_avg_at_start"]) if m["load_avg_at_start"] else "n/a"],
                ["ReasonKit", f"{m['reasonkit']}" + (f", commit {m['commit']}" if m["commit"] else "")],
                ["Date", m["date"]],
            ],
            "ll",
        ),
        "",
    ]
    lines += _summary(res)
    if res.get("overhead"):
        lines += _overhead(res["overhead"], res.get("profile"), res.get("hotspots"))
    if res.get("critical_path"):
        lines += _critical(res["critical_path"])
    if res.get("startup"):
        lines += _startup(res["startup"], res.get("importtime"))
    lines += [
        "## How to reproduce",
        "",
        "From the repository root, with the development environment active (`. .venv/bin/activate`, "
        "package installed with `pip install -e \".[dev]\"`):",
        "",
        "```sh",
        "python -m bench                     # full run (about 1-2 minutes), rewrites docs/benchmarks.md",
        "python -m bench --quick --out -     # tiny setting, report on stdout",
        "python -m bench --only overhead     # one section: overhead, critical-path or startup (repeatable)",
        "python -m bench --json bench.json   # also write the raw per-run numbers",
        "```",
        "",
        "The hot-spot table uses pyinstrument when it is importable (`pip install pyinstrument`; it is not a "
        "project dependency) and the standard library's cProfile otherwise; choose with `--profiler`. "
        "Nothing here asserts on speed: `tests/bench/test_bench_smoke.py` only checks that the harness runs "
        "and returns well-formed results.",
        "",
        "## What it measures, and what it does not",
        "",
        "All engine numbers are in-process: no network, no SDK, no HTTP, no JSON parsing of a wire response "
        "(the provider hands over a ready object), so they isolate the engine's own cost. A real provider "
        "adds its SDK and network time on top of section 1, and real latencies vary per call, which "
        "section 2 does not model. Section 3 is the cold start a user or an MCP client pays for every `rk` "
        "invocation, not the cost of running a profile.",
        "",
    ]
    return "\n".join(lines)
