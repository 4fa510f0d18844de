"""Reasons shown next to missed goals, from the run's own numbers and profiles."""

from __future__ import annotations

from typing import Any

from bench.report.markdown import fmt


def why_provider(provider: dict[str, Any], r: dict[str, Any]) -> str:
    rows = {(x["arm"], x["latency_ms"]): x for x in provider["rows"]}
    a, sdk = rows.get(("reasonkit", r["latency_ms"])), rows.get(("openai_sdk", r["latency_ms"]))
    if not a or not sdk:
        return ""
    return (
        f"ReasonKit's layer adds {fmt(a['added_ms'] - sdk['added_ms'], 2)} ms per call over the bare OpenAI "
        "SDK it wraps "
        f"(CPU {fmt(a['cpu_ms'], 2)} vs {fmt(sdk['cpu_ms'], 2)} ms per call); the SDK itself is most of the "
        "cost"
    )


def why_critical_path(r: dict[str, Any]) -> str:
    if r["peak_in_flight"] >= r["max_concurrency"] and r["ratio_limited_p50"] <= 1.10:
        return (
            f"the limiter's intended waves: {r['max_concurrency']} slots for more parallel calls; against "
            "the "
            f"limiter-aware path the ratio is {fmt(r['ratio_limited_p50'])} (see 3b)"
        )
    return "see section 3b"


def import_story(res: dict[str, Any]) -> str:
    imports = res.get("serve_importtime")
    if not imports or "error" in imports:
        return ""
    pk = imports.get("by_package") or []
    sdk = sum(p["self_ms"] for p in pk if p["package"] in ("mcp", "mcp_types"))
    return (
        f"importing what `rk serve-mcp` needs takes {fmt(imports['total_ms'], 0)} ms, {fmt(sdk, 0)} ms of it "
        "in the MCP SDK's "
        "own modules (`mcp_types` builds pydantic models for two protocol eras at import; `mcp` imports its "
        "client too)"
    )


def stdio_start_ms(res: dict[str, Any]) -> float | None:
    mcp = res.get("mcp")
    if mcp and mcp.get("servers", {}).get("reasonkit"):
        return float(mcp["servers"]["reasonkit"]["spawn_p50_ms"])
    sm = res.get("stdio_start")
    if sm and "error" not in sm:
        return float(sm["servers"]["reasonkit"]["spawn_p50_ms"])
    return None


def why_mcp_start(res: dict[str, Any]) -> str:
    story = import_story(res)
    return (story + "; see section 5") if story else "see sections 2 and 5"


def why_mcp_roundtrip(mcp: dict[str, Any]) -> str:
    rk = mcp["servers"]["reasonkit"]
    startup = mcp["servers"].get("sequential_thinking") or {}
    tools_list = mcp.get("tools_list") or {}
    parts = [
        f"the answer is {fmt(rk['list_bytes'] / 1024, 1)} KB ({rk['tools']} tools) vs "
        f"{fmt((startup.get('list_bytes') or 0) / 1024, 1)} KB (1 tool)"
    ]
    if tools_list and "error" not in tools_list:
        parts.append(f"the client parses it in {fmt(tools_list['client_parse_us'] / 1000, 2)} ms")
    profile = mcp.get("profile") or {}
    sieve = sum(
        x["pct"] for x in profile.get("self", []) if "TypeAdapter" in x["name"] or "model_dump" in x["name"]
    )
    if sieve:
        parts.append(
            f"in the server {fmt(sieve, 0)} % of the time is pydantic dump/validate of the result (the SDK's "
            "per-request result sieve)"
        )
    return "; ".join(parts)


def why_load(load: dict[str, Any]) -> str:
    u = load["uncached"]
    n = load["settings"]["calls"]
    cpu = u.get("cpu_ms_per_call")
    txt = ""
    if cpu:
        txt = (
            f"server CPU {fmt(cpu, 1)} ms per call x {n} calls on one event loop = "
            f"{fmt(cpu * n / 1000, 1)} s of queueing"
        )
    profile = load.get("profile") or {}
    tops = []
    callers = profile.get("by_reasonkit_caller", [])
    outside = sum(c["pct"] for c in callers if c["name"].startswith("no ReasonKit"))
    sdk = sum(
        c["pct"]
        for c in callers
        if c["name"].startswith(("OpenAIProvider._once", "_SDKProvider.", "AnthropicProvider._once"))
    )
    store = sum(c["pct"] for c in callers if "reasonkit/store/" in c["name"])
    for pct_, where in sorted(
        [
            (outside, "MCP SDK HTTP path, uvicorn, h11"),
            (sdk, "the provider call (OpenAI SDK)"),
            (store, "the run store"),
        ],
        reverse=True,
    ):
        if pct_ >= 3:
            tops.append(f"{fmt(pct_, 0)} % {where}")
    if tops:
        txt += "; profile: " + ", ".join(tops)
    return txt + "; see section 4"


def sdk_cpu(provider: dict[str, Any] | None) -> tuple[float, float] | None:
    """(bare OpenAI SDK, raw HTTP) CPU ms per sequential call at the lowest server latency of section 1."""
    if not provider or "error" in provider:
        return None
    lat0 = min(r["latency_ms"] for r in provider["rows"])
    by = {(r["arm"], r["latency_ms"]): r for r in provider["rows"]}
    sdk, raw = by.get(("openai_sdk", lat0)), by.get(("raw_http", lat0))
    return (sdk["cpu_ms"], raw["cpu_ms"]) if sdk and raw else None


def sdk_cost_note(provider: dict[str, Any] | None) -> str:
    cost = sdk_cpu(provider)
    if cost is None:
        return ""
    return (
        f"Section 1 measured the bare SDK at {fmt(cost[0], 2)} ms of CPU per call where a raw HTTP POST "
        f"of the same body costs {fmt(cost[1], 2)} ms."
    )


def why_cached(load: dict[str, Any]) -> str:
    return (
        "a cached call skips the provider, not the MCP request path and the run store "
        "(3 SQLite writes per call); see section 4"
    )
