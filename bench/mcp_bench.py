"""Section 2: `rk serve-mcp` against the official sequential-thinking server over stdio.

Both servers are started by the same Python MCP client (`mcp.Client(stdio_client(...))`, the SDK's
own stdio transport), in `mode="legacy"` (the initialize handshake: the Node server speaks only the
handshake-era protocol, so both do the same exchange) and with the client's response cache off (so
every `tools/list` reaches the server). Measured per server and round, alternating which goes first:

- spawn to first `tools/list`: from entering the client (process spawn) to the parsed list of tools;
- warm `tools/list` round trip: `warm` more calls on the open session, median;
- close: leaving the client (stdin closed, process gone).

Diagnostics without the SDK client (`raw`): JSON-RPC lines written to the child's stdin and read
from its stdout, so the client's own parsing (pydantic models of every tool) is left out: spawn to
the initialize answer, spawn to the first tools/list answer, the warm round trip, and the size of
the tools/list answer.

The Node server is started as `node dist/index.js` with Node 22 from bench/.node (not through npx,
whose own start-up would be counted); ReasonKit as the `rk` console script of the running
environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from typing import Any

import anyio

from bench.common import Progress, quiet
from bench.stats import median, percentile

STARTUP_RATIO_GOAL = 2.0
ROUNDTRIP_RATIO_GOAL = 1.0
STDIO_START_GOAL_S = 1.0


def server_commands(rk: str, node: dict[str, Any] | None) -> dict[str, list[str]]:
    cmds = {"reasonkit": [rk, "serve-mcp"]}
    if node and "error" not in node:
        cmds["sequential_thinking"] = [node["node"], node["server_js"]]
    return cmds


def _env(home: str) -> dict[str, str]:
    # A clean HOME and data dir: no user config, protocols or run store leak in.
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": home,
        "REASONKIT_DATA_DIR": os.path.join(home, "data"),
        "LANG": "C.UTF-8",
    }


async def client_session(cmd: list[str], env: dict[str, str], warm: int) -> dict[str, Any]:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)
    with open(os.devnull, "w") as errlog:  # noqa: ASYNC230 - /dev/null, never blocks
        t0 = time.perf_counter()
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", cache=None) as client:
            tools = (await client.list_tools()).tools
            first = time.perf_counter() - t0
            rts = []
            for _ in range(warm):
                a = time.perf_counter()
                await client.list_tools()
                rts.append(time.perf_counter() - a)
            version = client.protocol_version
            t_close = time.perf_counter()
        closed = time.perf_counter() - t_close
    return {
        "spawn_to_list_s": first,
        "roundtrips_s": rts,
        "close_s": closed,
        "tools": len(tools),
        "protocol_version": version,
    }


def raw_session(cmd: list[str], env: dict[str, str], warm: int, profile_calls: int = 0) -> dict[str, Any]:
    """The same exchange as raw JSON-RPC lines over the child's pipes; with `profile_calls`, that many
    more tools/list calls under py-spy (the fold is returned as "profile")."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def send(obj: dict[str, Any]) -> None:
        stdin.write((json.dumps(obj) + "\n").encode())
        stdin.flush()

    def reply(want_id: int) -> bytes:
        while True:
            line = stdout.readline()
            if not line:
                raise RuntimeError(f"{cmd[0]} closed stdout")
            if f'"id":{want_id}'.encode() in line.replace(b" ", b""):
                return line

    try:
        send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "rk-bench", "version": "1"},
                },
            }
        )
        reply(1)
        t_init = time.perf_counter() - t0
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        listed = reply(2)
        t_list = time.perf_counter() - t0
        rts = []
        for i in range(warm):
            a = time.perf_counter()
            send({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/list"})
            reply(10 + i)
            rts.append(time.perf_counter() - a)
        prof = None
        if profile_calls:
            from bench.spy import Recording

            with Recording(proc.pid) as rec:
                for i in range(profile_calls):
                    send({"jsonrpc": "2.0", "id": 100_000 + i, "method": "tools/list"})
                    reply(100_000 + i)
            prof = rec.fold()
    finally:
        stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        stdout.close()
    return {
        "init_s": t_init,
        "list_s": t_list,
        "roundtrips_s": rts,
        "list_bytes": len(listed),
        "profile": prof,
    }


def bench_mcp(
    rk: str,
    node: dict[str, Any] | None,
    *,
    rounds: int = 10,
    warm: int = 200,
    raw_rounds: int = 3,
    profile: bool = True,
    progress: Progress = quiet,
) -> dict[str, Any]:
    cmds = server_commands(rk, node)
    names = list(cmds)
    home = tempfile.mkdtemp(prefix="rk-bench-mcp-")
    env = _env(home)
    per: dict[str, dict[str, list[Any]]] = {
        n: {
            "spawn": [],
            "rt": [],
            "rt_round": [],
            "close": [],
            "raw_init": [],
            "raw_list": [],
            "raw_rt": [],
            "bytes": [],
            "tools": [],
            "version": [],
        }
        for n in names
    }

    async def main() -> None:
        for n in names:  # warm the OS file cache and bytecode
            await client_session(cmds[n], env, 1)
        for r in range(rounds):
            order = names if r % 2 == 0 else list(reversed(names))
            for n in order:
                s = await client_session(cmds[n], env, warm)
                d = per[n]
                d["spawn"].append(s["spawn_to_list_s"])
                d["rt"] += s["roundtrips_s"]
                d["rt_round"].append(median(s["roundtrips_s"]))
                d["close"].append(s["close_s"])
                d["tools"].append(s["tools"])
                d["version"].append(s["protocol_version"])
            line = ", ".join(f"{n} {per[n]['spawn'][-1] * 1000:.0f} ms" for n in names)
            progress(f"mcp: round {r + 1}/{rounds}: spawn to tools/list {line}")

    anyio.run(main, backend="asyncio")
    for r in range(raw_rounds):
        order = names if r % 2 == 0 else list(reversed(names))
        for n in order:
            s = raw_session(cmds[n], env, warm)
            d = per[n]
            d["raw_init"].append(s["init_s"])
            d["raw_list"].append(s["list_s"])
            d["raw_rt"] += s["roundtrips_s"]
            d["bytes"].append(s["list_bytes"])
    prof = None
    if profile:
        progress("mcp: profiling rk serve-mcp (py-spy) during warm tools/list calls")
        prof = raw_session(cmds["reasonkit"], env, 10, profile_calls=3000)["profile"]

    out: dict[str, Any] = {
        "goals": {
            "startup_ratio": STARTUP_RATIO_GOAL,
            "roundtrip_ratio": ROUNDTRIP_RATIO_GOAL,
            "stdio_start_s": STDIO_START_GOAL_S,
        },
        "settings": {
            "rounds": rounds,
            "warm": warm,
            "raw_rounds": raw_rounds,
            "client_mode": "legacy",
            "client_cache": False,
        },
        "commands": {
            n: " ".join(
                os.path.relpath(c) if os.path.isabs(c) and c.startswith(os.getcwd()) else c for c in cmd
            )
            for n, cmd in cmds.items()
        },
        "node": node,
        "servers": {},
        "profile": prof,
    }
    for n in names:
        d = per[n]
        out["servers"][n] = {
            "spawn_p50_ms": median(d["spawn"]) * 1000,
            "spawn_min_ms": min(d["spawn"]) * 1000,
            "spawn_max_ms": max(d["spawn"]) * 1000,
            "spawn_rounds_ms": [x * 1000 for x in d["spawn"]],
            "rt_p50_ms": median(d["rt"]) * 1000,
            "rt_p99_ms": percentile(d["rt"], 99) * 1000,
            "rt_rounds_ms": [x * 1000 for x in d["rt_round"]],
            "close_p50_ms": median(d["close"]) * 1000,
            "tools": d["tools"][0] if d["tools"] else None,
            "protocol_version": d["version"][0] if d["version"] else None,
            "raw_init_p50_ms": median(d["raw_init"]) * 1000,
            "raw_list_p50_ms": median(d["raw_list"]) * 1000,
            "raw_rt_p50_ms": median(d["raw_rt"]) * 1000,
            "list_bytes": d["bytes"][0] if d["bytes"] else None,
        }
    rk_s = out["servers"]["reasonkit"]
    out["stdio_start_met"] = rk_s["spawn_p50_ms"] / 1000 <= STDIO_START_GOAL_S
    if "sequential_thinking" in per:
        a, b = per["reasonkit"], per["sequential_thinking"]
        spawn_ratios = [x / y for x, y in zip(a["spawn"], b["spawn"], strict=True)]
        rt_ratios = [x / y for x, y in zip(a["rt_round"], b["rt_round"], strict=True)]
        out["ratios"] = {
            "spawn_rounds": spawn_ratios,
            "spawn": median(spawn_ratios),
            "roundtrip_rounds": rt_ratios,
            "roundtrip": median(rt_ratios),
            "raw_roundtrip": rk_s["raw_rt_p50_ms"] / out["servers"]["sequential_thinking"]["raw_rt_p50_ms"],
            "raw_list": rk_s["raw_list_p50_ms"] / out["servers"]["sequential_thinking"]["raw_list_p50_ms"],
        }
        out["met"] = {
            "startup": out["ratios"]["spawn"] <= STARTUP_RATIO_GOAL,
            "roundtrip": out["ratios"]["roundtrip"] < ROUNDTRIP_RATIO_GOAL,
        }
    return out


def tools_list_profile(rk: str, calls: int = 2000) -> dict[str, Any]:
    """Where a warm tools/list spends its time inside `rk serve-mcp`: the same handler in-process
    (the SDK's low-level server + our `_list_tools`), timed piece by piece: building the result
    model, serialising it as the SDK does, and parsing it back (the client's share)."""
    import mcp_types as types

    from reasonkit.config import load_settings
    from reasonkit.observability.metrics import Metrics
    from reasonkit.server.mcp.app import build_server

    home = tempfile.mkdtemp(prefix="rk-bench-mcp-prof-")
    settings = load_settings(environ={"HOME": home, "REASONKIT_DATA_DIR": os.path.join(home, "data")})
    core = build_server(settings, metrics=Metrics())
    try:
        result = types.ListToolsResult(tools=core.tools)
        t0 = time.perf_counter()
        for _ in range(calls):
            types.ListToolsResult(tools=core.tools)
        build = (time.perf_counter() - t0) / calls
        t0 = time.perf_counter()
        for _ in range(calls):
            text = result.model_dump_json(by_alias=True, exclude_none=True)
        dump = (time.perf_counter() - t0) / calls
        t0 = time.perf_counter()
        for _ in range(calls):
            types.ListToolsResult.model_validate_json(text)
        parse = (time.perf_counter() - t0) / calls
        return {
            "calls": calls,
            "tools": len(core.tools),
            "bytes": len(text),
            "build_us": build * 1e6,
            "serialise_us": dump * 1e6,
            "client_parse_us": parse * 1e6,
        }
    finally:
        if core.store is not None:
            core.store.close()
