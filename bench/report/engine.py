"""Section 3a: orchestration overhead per LLM call, and where the time goes."""

from __future__ import annotations

from typing import Any

from bench.report.markdown import fmt, met, table


def overhead_section(
    overhead: dict[str, Any], profile: dict[str, Any] | None, micro: dict[str, Any] | None
) -> list[str]:
    s = overhead["settings"]
    g = overhead["goal_ms"]
    out = [
        "### 3a. Orchestration overhead per LLM call",
        "",
        "**What it measures.** Every built-in protocol runs against an in-process provider with **zero "
        "latency**: it returns at once, without awaiting anything, a minimal valid object for the step's "
        "JSON schema (`reasonkit.providers.fake.FakeProvider` and its `fill_schema`, built once per schema "
        "and kept, a fresh copy per call; arrays get `minItems` items, at least one, so GigaThink fans out "
        "to 10 perspectives and ProofGuard to 3 checks) and a fixed usage of 1,800 input / 600 output "
        "tokens. Everything left is the engine: "
        "input coercion, template rendering, the limiter, response parsing and JSON-schema validation, "
        "confidence scoring, traces. Overhead per call = wall time of one `Engine.run_protocol` / LLM calls "
        f"in that run. {s['rounds']} rounds x {s['runs_per_round']} runs per protocol (after {s['warmup']} "
        f"warm-up runs each), `max_concurrency` {s['max_concurrency']}, no event callback. p50 and p95 are "
        "over runs. *Stub* is the time spent inside the benchmark provider itself, included in the overhead.",
        "",
    ]
    rows = []
    for pid, d in overhead["protocols"].items():
        startup = ", ".join(f"{k} {v}" for k, v in d["statuses"].items())
        rows.append(
            [
                f"`{pid}`",
                f"{d['calls_per_run']:g}",
                str(d["runs"]),
                fmt(d["p50_ms"]),
                fmt(d["p95_ms"]),
                fmt(d["mean_ms"]),
                fmt(d["p50_ms"] / g, 2),
                fmt(d["cpu_p50_ms"]),
                fmt(d["gc_us_per_call"], 0),
                fmt(d["stub_us_per_call"], 1),
                startup,
            ]
        )
    o = overhead["overall"]
    rows.append(
        [
            "**all protocols**",
            "",
            str(o["runs"]),
            f"**{fmt(o['p50_ms'])}**",
            f"**{fmt(o['p95_ms'])}**",
            fmt(o["mean_ms"]),
            f"**{fmt(o['p50_ms'] / g, 2)}**",
            fmt(o["cpu_p50_ms"]),
            fmt(o["gc_us_per_call"], 0),
            "",
            "",
        ]
    )
    out += table(
        [
            "Protocol",
            "LLM calls / run",
            "Runs",
            "p50 ms / call",
            "p95 ms / call",
            "mean ms / call",
            "p50 / goal",
            "CPU p50 ms / call",
            "GC µs / call",
            "stub µs / call",
            "Run status",
        ],
        rows,
        "lrrrrrrrrrl",
    )
    out += [
        "",
        f"Goal: p50 <= {g} ms per call: {met(overhead['met'])}.",
        "",
        "*CPU p50* is the same ratio with the process's CPU time instead of wall time: it leaves out time "
        "the "
        "process spent waiting for a core, so when it is well below the wall p50 other processes were "
        "competing for the CPU (on a virtual machine, time taken by the hypervisor still counts as CPU time; "
        "compare the per-round p50s below for the run-to-run spread). *GC* is time inside the garbage "
        "collector "
        f"({o['gc_collections']} collections during "
        "the measured runs), included in the overhead.",
        "",
    ]
    round_rows = [
        [str(i + 1), fmt(p50), fmt(p95)]
        for i, (p50, p95) in enumerate(zip(o["round_p50_ms"], o["round_p95_ms"], strict=True))
    ]
    out += [
        "Per round (all protocols pooled):",
        "",
        *table(["Round", "p50 ms / call", "p95 ms / call"], round_rows),
        "",
    ]
    if profile:
        out += profile_section(profile, micro, overhead)
    return out


# What is known about a hot spot and what would make it cheaper; shown only for functions that the
# profile of this run puts in its table, keyed by the function name as the table shows it.
HOTSPOT_NOTES = {
    "reasonkit.engine.parsing.schema_errors": (
        "`Engine._parse` validates every reply with a new `jsonschema.Draft202012Validator` built from the "
        "step's output schema. "
        "Building the validator is cheap (see the direct timings); the time is jsonschema's per-keyword "
        "dispatch, which creates an evolved validator for every sub-schema and array item it descends into. "
        "Caching the validator alone therefore saves little. Proposed: compile each step's output schema "
        "once "
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


def profile_section(
    profile: dict[str, Any], micro: dict[str, Any] | None, overhead: dict[str, Any]
) -> list[str]:
    out = [
        "#### Where the time goes",
        "",
        f"The same zero-latency workload ({profile['runs_per_protocol']} runs of every protocol, "
        f"{profile['calls']} "
        f"LLM calls) under **{profile['profiler']}**"
        + (
            " (sampling every 0.2 ms)"
            if profile["profiler"] == "pyinstrument"
            else " (deterministic; C functions' time is given to their Python callers)"
        )
        + ". Self time grouped by where the code lives. The profiler slows everything down, so the shares "
        "are what matter; *est. µs / call* = share x the unprofiled mean overhead per call "
        f"({fmt(overhead['overall']['mean_ms'] * 1000, 0)} µs). The profiler's own cost per function call "
        "makes "
        "small, often-called functions look bigger than they are; the direct timings further down are the "
        "ground truth for the two largest hot spots.",
        "",
    ]
    mean_us = overhead["overall"]["mean_ms"] * 1000
    rows = [
        [a["area"], fmt(a["pct"], 1) + " %", fmt(a["pct"] * mean_us / 100, 0)]
        for a in profile["areas"]
        if a["pct"] >= 0.5
    ]
    out += table(["Area (self time)", "Share", "est. µs / call"], rows)
    out += [
        "",
        "ReasonKit functions by inclusive time (their callees included; the per-run and per-step driver "
        "coroutines, which include everything, are left out):",
        "",
    ]
    rows = [
        [
            f"`{f['function']}`",
            f"`{f['location']}`",
            fmt(f["pct"], 1) + " %",
            fmt(f["pct"] * mean_us / 100, 0),
        ]
        for f in profile["functions"]
    ]
    out += table(["Function", "Where", "Share", "est. µs / call"], rows, "llrr")
    out += [""]
    notes = [
        (f, HOTSPOT_NOTES[f["function"]]) for f in profile["functions"] if f["function"] in HOTSPOT_NOTES
    ]
    if notes:
        out += ["Hot spots in this table, and what would make them cheaper:", ""]
        out += [f"- `{f['function']}` ({fmt(f['pct'], 1)} %): {text}" for f, text in notes]
        areas = {a["area"]: a["pct"] for a in profile["areas"]}
        loop = areas.get("event loop and tasks (anyio, asyncio)")
        if loop:
            out += [
                f"- Event loop and tasks ({fmt(loop, 1)} % self time): a task group per run, per protocol "
                "and per "
                "`for_each` step, an `anyio.Event` per step, and the limiter, whose `acquire` yields to the "
                "loop "
                "on every call even when a slot is free. Spread thin; no single fix."
            ]
        out += [""]
    if micro:
        pc, sh = micro["per_call"], micro["share_pct"]
        out += [
            "Direct timings, without a profiler: call-weighted means over the steps of all protocols, in µs "
            "per "
            "LLM call, and their share of the mean engine overhead per call measured right before and after "
            f"them ({fmt(micro['engine_us_per_call'], 0)} µs; this machine's speed drifts, so the yardstick "
            "is "
            "taken at the same time):",
            "",
            *table(
                ["Operation", "µs / call", "Share of the engine's time"],
                [
                    [
                        "`schema_errors(obj, schema)` (`reasonkit/engine/parsing.py`), as `Engine._parse` "
                        "calls it on every reply",
                        fmt(pc["schema_errors_us"], 1),
                        fmt(sh["schema_errors_us"], 1) + " %",
                    ],
                    [
                        "… of which building `Draft202012Validator(schema)`",
                        fmt(pc["validator_build_us"], 1),
                        fmt(sh["validator_build_us"], 1) + " %",
                    ],
                    [
                        "`Template(step.prompt)` + `Template(step.system)` parsing, done again on every "
                        "call in `Engine._run_instance`",
                        fmt(pc["template_parse_us"], 1),
                        fmt(sh["template_parse_us"], 1) + " %",
                    ],
                ],
                "lrr",
            ),
            "",
        ]
    return out
