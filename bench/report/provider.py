"""Section 1: the provider layer against LiteLLM."""

from __future__ import annotations

from typing import Any

from bench.report.markdown import fmt, met, table

ARM_ORDER = ("reasonkit", "litellm", "openai_sdk", "raw_http")


def provider_section(provider: dict[str, Any], fake_cost: dict[str, Any] | None) -> list[str]:
    out = ["## 1. Provider layer vs LiteLLM", ""]
    if "error" in provider:
        return out + [f"Not measured: {provider['error']}.", ""]
    s, info = provider["settings"], provider.get("info", {})
    out += [
        "**What it measures.** The same chat-completions request (a system and a user message of about 1.9 "
        "KB, a JSON "
        "schema as `response_format`) to the same fake OpenAI-compatible server on 127.0.0.1 "
        "(`bench/fake_openai.py`, its own process, a canned reply after a fixed latency). "
        "**A** is ReasonKit's provider as the engine gets it: `build_provider(settings)` -> "
        f"`{info.get('reasonkit_provider')}` "
        f"(retry loop with max_retries {info.get('reasonkit_max_retries')}, circuit breaker "
        f"{'on' if info.get('reasonkit_breaker') else 'off'}, response cache "
        f"{'on' if info.get('reasonkit_cache') else 'OFF'} "
        "(`ENABLE_CACHE=false`), usage and cost accounting, metrics), `await "
        "provider.complete(LLMRequest(...))`. "
        '**B** is `litellm.acompletion(model="openai/...", api_base=..., ...)` '
        f"(LiteLLM {info.get('litellm_version')}, "
        "its defaults, its cost calculation included). Two references: the bare OpenAI SDK "
        f"(openai {info.get('openai_version')}, the same for A and B) and a raw HTTP client (the floor: "
        "network plus fake "
        f"server). {s['rounds']} rounds after {s['warmup']} warm-up calls per arm; in each round, at each "
        "server latency, "
        f"every arm makes {s['calls']} sequential calls, then {s['conc_calls']} calls with "
        f"{s['concurrency']} in flight, "
        "in a rotating order. *Added* = median wall time per call - the server's latency; *layer* = median - "
        "the raw "
        "floor's median; *CPU* = this process's CPU time per sequential call (all threads).",
        "",
    ]
    rows = []
    for r in provider["rows"]:
        rows.append(
            [
                provider["labels"].get(r["arm"], r["arm"]),
                f"{r['latency_ms']:g}",
                fmt(r["p50_ms"], 2),
                fmt(r["p99_ms"], 2),
                f"**{fmt(r['added_ms'], 2)}**"
                if r["arm"] in ("reasonkit", "litellm")
                else fmt(r["added_ms"], 2),
                fmt(r["layer_ms"], 2),
                fmt(r["cpu_ms"], 2),
                fmt(r["conc_throughput"], 0),
                fmt(r["conc_p50_ms"], 1),
                fmt(r["conc_p99_ms"], 1),
            ]
        )
    out += table(
        [
            "Arm",
            "Server ms",
            "p50 ms",
            "p99 ms",
            "Added ms",
            "Layer ms",
            "CPU ms / call",
            f"Calls/s at {s['concurrency']} in flight",
            "p50 ms in flight",
            "p99 ms in flight",
        ],
        rows,
        "lrrrrrrrrr",
    )
    out += ["", "A / B per round (ReasonKit / LiteLLM; below 1: ReasonKit costs less):", ""]
    round_rows = []
    for r in provider["ratios"]:
        round_rows.append(
            [
                f"{r['latency_ms']:g} ms",
                ", ".join(fmt(x, 2) for x in r["added_ratio_rounds"]),
                f"**{fmt(r['added_ratio'], 2)}**",
                fmt(r["layer_ratio"], 2),
                fmt(r["cpu_ratio"], 2),
                ", ".join(fmt(x, 2) for x in r["conc_time_ratio_rounds"]),
                f"**{fmt(r['conc_time_ratio'], 2)}**",
            ]
        )
    out += table(
        [
            "Server latency",
            "Added-latency ratio per round",
            "Median",
            "Layer ratio",
            "CPU ratio",
            "Time ratio at 50 in flight per round",
            "Median",
        ],
        round_rows,
        "lllrrll",
    )
    out += ["", f"Goal: ReasonKit / LiteLLM < {provider['goal_ratio']:g}: {met(provider['met'])}.", ""]
    by = {(r["arm"], r["latency_ms"]): r for r in provider["rows"]}
    lat0 = min(r["latency_ms"] for r in provider["rows"])
    a, sdk, raw = by.get(("reasonkit", lat0)), by.get(("openai_sdk", lat0)), by.get(("raw_http", lat0))
    if a and sdk and raw:
        out += [
            f"**Where the time goes.** At {lat0:g} ms, ReasonKit's own layer (resilience, accounting, "
            "metrics) costs "
            f"{fmt(a['added_ms'] - sdk['added_ms'], 2)} ms per call over the bare OpenAI SDK it wraps (CPU "
            f"{fmt(a['cpu_ms'], 2)} vs "
            f"{fmt(sdk['cpu_ms'], 2)} ms); the SDK itself costs {fmt(sdk['cpu_ms'], 2)} ms of CPU per call "
            "where a raw HTTP POST of the "
            f"same body costs {fmt(raw['cpu_ms'], 2)} ms. The SDK's request path (parameter transforms, "
            "httpx2 and httpcore2 with an "
            "anyio cancel scope around every socket operation, pydantic parsing of the reply) is therefore "
            "almost all of A's "
            "cost; LiteLLM calls the same SDK for `openai/` models and adds its own logging and cost "
            "calculation. Proposed: a direct "
            "HTTP path for OpenAI-compatible chat completions in `reasonkit/providers/openai_compat.py` "
            "would take most of the "
            f"{fmt(sdk['cpu_ms'] - raw['cpu_ms'], 1)} ms off every LLM call (see section 4, where it is the "
            "largest share of the "
            "server's CPU under load).",
            "",
        ]
    if fake_cost and "error" not in fake_cost:
        out += [
            f"**The fake server's own cost.** One request with the raw client, median of "
            f"{fake_cost['rounds']} rounds of {fake_cost['n']}: `bench/fake_openai.py` in its own process "
            f"{fmt(fake_cost['fake_openai_ms'], 3)} ms; the same server on an event loop in a thread of the "
            f"client's process (as test doubles usually run) {fmt(fake_cost.get('in_thread_ms'), 3)} ms. "
            "In the client's process the server's thread would take the interpreter lock from the client "
            "being measured; hence its own process.",
            "",
        ]
    return out
