"""Section 2: the MCP server against the official sequential-thinking server over stdio."""

from __future__ import annotations

from typing import Any

from bench.report.markdown import fmt, met, spy_tables, table


def mcp_section(mcp: dict[str, Any], imports: dict[str, Any] | None = None) -> list[str]:
    out = ["## 2. MCP server vs the official sequential-thinking server (stdio)", ""]
    if "error" in mcp:
        return out + [f"Not measured: {mcp['error']}.", ""]
    s = mcp["settings"]
    node = mcp.get("node") or {}
    out += [
        "**What it measures.** Both servers started by the same Python MCP client, "
        "`mcp.Client(stdio_client(...), "
        'mode="legacy", cache=None)` (the initialize handshake, which the Node server speaks; '
        "the client's response "
        "cache off so every call reaches the server). *Spawn to tools/list*: entering the client (the "
        "process spawn) "
        f"to the parsed first `tools/list`. *Round trip*: {s['warm']} more `tools/list` calls on the warm "
        "session. "
        f"{s['rounds']} rounds, alternating which server goes first. *Raw* columns: the same exchange as "
        "JSON-RPC lines "
        f"on the pipes without the SDK client ({s['raw_rounds']} rounds), i.e. without the client's parsing. "
        "ReasonKit runs "
        "as `rk serve-mcp` (clean HOME, no config, built-in protocols); the peer as "
        f"`node dist/index.js` (Node {node.get('node_version', '?')}, "
        f"@modelcontextprotocol/server-sequential-thinking {node.get('server_version', '?')}, from "
        "bench/.node/).",
        "",
    ]
    rows = []
    for name, d in mcp["servers"].items():
        label = "ReasonKit `rk serve-mcp`" if name == "reasonkit" else "sequential-thinking (Node)"
        rows.append(
            [
                label,
                str(d["tools"]),
                fmt(d["spawn_p50_ms"], 0),
                f"{fmt(d['spawn_min_ms'], 0)}–{fmt(d['spawn_max_ms'], 0)}",
                fmt(d["rt_p50_ms"], 2),
                fmt(d["rt_p99_ms"], 2),
                fmt(d["close_p50_ms"], 0),
                fmt(d["raw_list_p50_ms"], 0),
                fmt(d["raw_rt_p50_ms"], 2),
                fmt((d["list_bytes"] or 0) / 1024, 1),
            ]
        )
    out += table(
        [
            "Server",
            "Tools",
            "Spawn to tools/list ms (p50)",
            "range",
            "Round trip ms p50",
            "p99",
            "Close ms",
            "Raw spawn to list ms",
            "Raw round trip ms",
            "tools/list KB",
        ],
        rows,
        "lrrrrrrrrr",
    )
    ratios = mcp.get("ratios")
    if ratios:
        goals = mcp["goals"]
        out += [
            "",
            *table(
                ["Ratio ReasonKit / Node", "Per round", "Median", "Goal", "Status"],
                [
                    [
                        "spawn to first tools/list",
                        ", ".join(fmt(x, 2) for x in ratios["spawn_rounds"]),
                        f"**{fmt(ratios['spawn'], 2)}**",
                        f"<= {goals['startup_ratio']:g}",
                        met(mcp["met"]["startup"]),
                    ],
                    [
                        "warm tools/list round trip (client)",
                        ", ".join(fmt(x, 2) for x in ratios["roundtrip_rounds"]),
                        f"**{fmt(ratios['roundtrip'], 2)}**",
                        f"< {goals['roundtrip_ratio']:g}",
                        met(mcp["met"]["roundtrip"]),
                    ],
                    ["warm round trip, raw (no client parsing)", "", fmt(ratios["raw_roundtrip"], 2), "", ""],
                ],
                "lllll",
            ),
            "",
        ]
    tools_list = mcp.get("tools_list")
    notes = []
    if ratios and not mcp["met"]["startup"]:
        notes.append(f"- **Start-up** ({fmt(ratios['spawn'], 2)}x): {mcp_import_story(mcp, imports)}")
    if ratios and not mcp["met"]["roundtrip"]:
        txt = (
            f"- **Round trip** ({fmt(ratios['roundtrip'], 2)}x): ReasonKit's `tools/list` answer is "
            f"{fmt(mcp['servers']['reasonkit']['list_bytes'] / 1024, 1)} KB "
            f"({mcp['servers']['reasonkit']['tools']} tools, each with its input schema, the shared output "
            "schema and a description "
            "that says when to use it) against one tool in 4.6 KB. "
        )
        reasonkit_server, peer_server = (
            mcp["servers"]["reasonkit"],
            mcp["servers"].get("sequential_thinking") or {},
        )
        txt += (
            f"Server side (raw round trip) {fmt(reasonkit_server['raw_rt_p50_ms'], 2)} ms vs "
            f"{fmt(peer_server.get('raw_rt_p50_ms'), 2)} ms; the Python client adds "
            f"{fmt(reasonkit_server['rt_p50_ms'] - reasonkit_server['raw_rt_p50_ms'], 2)} ms vs "
            f"{fmt((peer_server.get('rt_p50_ms') or 0) - (peer_server.get('raw_rt_p50_ms') or 0), 2)} ms on "
            "top "
            "(reading the longer line through its stdio threads, parsing and validating it). "
        )
        if tools_list and "error" not in tools_list:
            txt += (
                f"In-process timings of the same result: building the model {fmt(tools_list['build_us'], 0)} "
                "µs, serialising it once "
                f"{fmt(tools_list['serialise_us'], 0)} µs, validating it as the client does "
                f"{fmt(tools_list['client_parse_us'], 0)} µs. "
            )
        profile = mcp.get("profile") or {}
        if profile.get("self"):
            top = ", ".join(f"`{x['name']}` {fmt(x['pct'], 0)} %" for x in profile["self"][:4])
            txt += (
                "py-spy on `rk serve-mcp` answering warm `tools/list` calls (time holding the interpreter "
                f"lock): {top}. The SDK's "
                "`ServerRunner._serialize` passes every result through "
                "`mcp_types.methods.serialize_server_result` "
                "(`model_dump`, then `validate_python` against the protocol era's schema, then `dump_python` "
                "again), so the "
                "cost grows with the size of the answer. "
            )
        txt += (
            "Proposed fix: shrink the answer — the output schema (2.5 KB) is repeated in each of the 7 tools "
            "and is 53 % of "
            "the bytes; drop its per-field descriptions (the tool description already explains the result) "
            "or trim the "
            "per-step summary from it. A fix in the SDK (skip re-validating results built from its own typed "
            "models, or "
            "cache the serialised `tools/list` until the list changes) would help every server."
        )
        notes.append(txt)
    if notes:
        out += ["Why the goals are missed, from this run's profile, and the proposed fixes:", "", *notes, ""]
    profile = mcp.get("profile")
    if profile and "error" not in profile:
        out += spy_tables(profile, "`rk serve-mcp` answering warm `tools/list` calls over stdio")
    elif profile:
        out += [f"(Server profile not taken: {profile['error']}.)", ""]
    return out


def mcp_import_story(mcp: dict[str, Any], imports: dict[str, Any] | None = None) -> str:
    rk = mcp["servers"]["reasonkit"]
    share = ""
    if imports and "error" not in imports and imports.get("total_ms"):
        share = f" Imports alone take {fmt(imports['total_ms'], 0)} ms of it (section 5b)"
        pk = imports.get("package_self_ms") or {}
        if pk:
            ours = sum(v for k, v in pk.items() if k.startswith("reasonkit"))
            sdk = sum(v for k, v in pk.items() if k in ("mcp", "mcp_types"))
            share += (
                f": the MCP SDK's own modules (`mcp`, `mcp_types`) {fmt(sdk, 0)} ms of self time, "
                f"ReasonKit's modules {fmt(ours, 0)} ms, "
                "the rest pydantic, loguru, httpx, anyio, starlette and the standard library they pull in. "
                "Even a ReasonKit that "
                "imported nothing of its own would stay above 2x the Node server while the SDK costs that "
                "much"
            )
        share += "."
    return (
        f"the raw exchange shows the same start-up ({fmt(rk['raw_list_p50_ms'], 0)} ms to the first "
        "tools/list answer), so it is the "
        f"server process's start, not the client.{share} The Node server loads "
        "one bundled file and its SDK; `rk serve-mcp` imports the MCP Python SDK (whose `mcp_types` package "
        "builds "
        "pydantic models for two protocol eras at import), pydantic, loguru, jsonschema and its own modules, "
        "loads "
        "and validates the protocol TOML files and opens the run store. Proposed fixes: defer what the first "
        "`tools/list` does not need (the store, the engine, jsonschema, prometheus) until the first "
        "`tools/call`; the MCP "
        "SDK's import cost needs an upstream change (lazy era models)."
    )
