"""Issue 12, points 7-8: the tool list, stdio start-up and server CPU per uncached tool call, for this
checkout against another ReasonKit tree (e.g. `git archive HEAD | tar -x -C /tmp/rk_before`) and the
Node sequential-thinking server.

    python -m bench.lean_bench --before /tmp/rk_before --node tools/node [--rounds 10] [--calls 200]

- *tools/list*: `rk serve-mcp` on stdio, raw JSON-RPC lines (initialize, initialized, tools/list): the
  bytes of the tools/list line, and the wall time from the spawn to that line (no SDK client).
- *CPU per uncached call*: `rk serve-mcp --port N` (bench/load_bench.py's ServerProcess: the one-step
  `bench_one` protocol) against bench/fake_openai.py answering at 0 ms; the server process's CPU time
  (user + system, /proc) over `calls` distinct queries, one at a time and then all at once, divided
  by `calls`. The arms alternate round by round.

The other tree runs with the same interpreter and packages (`PYTHONPATH` put in front), so only
ReasonKit's own code differs. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bench.load_bench import ServerProcess, _burst, _sequential
from bench.procs import FakeOpenAI, cpu_seconds
from bench.rawhttp import RawClient
from bench.stats import median

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}


def rk_for(tree: Path | None, where: Path) -> list[str]:
    """The command that runs `rk` from `tree` (None: this checkout, as installed)."""
    if tree is None:
        rk = Path(sys.executable).parent / "rk"
        return [str(rk)] if rk.exists() else [sys.executable, "-m", "reasonkit.cli"]
    script = where / f"rk-{tree.name}"
    script.write_text(
        "#!/bin/sh\n"  # cd away from any checkout: a `reasonkit/` in the cwd would shadow the tree
        f'cd "{where}" && PYTHONPATH="{tree}" exec "{sys.executable}" '
        '-c "import sys; from reasonkit._entry import main; sys.exit(main())" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return [str(script)]


def stdio_list(cmd: list[str], home: Path) -> tuple[float, int, int]:
    """(ms from spawn to the tools/list line, its bytes, tools) for one server start."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "REASONKIT_DATA_DIR": str(home / "data"),
        "LOCAL_MODEL_AUTO": "false",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "LLM_DEFAULT_PROVIDER": "openai",
    }
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=home
    )
    assert proc.stdin is not None and proc.stdout is not None
    for msg in (INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"}):
        proc.stdin.write((json.dumps(msg) + "\n").encode())
    proc.stdin.write(b'{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}\n')
    proc.stdin.flush()
    line = b""
    for line in iter(proc.stdout.readline, b""):
        if json.loads(line).get("id") == 2:
            break
    elapsed = (time.perf_counter() - t0) * 1000
    proc.stdin.close()
    proc.wait(30)
    body = line.rstrip(b"\n")
    return elapsed, len(body), len(json.loads(body)["result"]["tools"])


def bench_stdio(arms: dict[str, list[str]], rounds: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="rk-lean-stdio-"))
    out: dict[str, Any] = {name: {"ms": [], "bytes": None, "tools": None} for name in arms}
    names = list(arms)
    for name in names:  # warm-up: bytecode caches, page cache
        stdio_list(arms[name], home)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            ms, size, tools = stdio_list(arms[name], home)
            out[name]["ms"].append(round(ms, 1))
            out[name]["bytes"], out[name]["tools"] = size, tools
    for name in names:
        out[name]["median_ms"] = round(median(out[name]["ms"]), 1)
    return out


def bench_cpu(arms: dict[str, tuple[list[str], str]], rounds: int, calls: int) -> dict[str, Any]:
    """`arms`: name -> (rk command, extra config TOML)."""
    root = Path(tempfile.mkdtemp(prefix="rk-lean-cpu-"))
    out: dict[str, Any] = {name: {"sequential": [], "burst": [], "errors": 0} for name in arms}
    fake = FakeOpenAI(latency=0.0, content=json.dumps({"answer": "ok", "confidence": 0.8}))
    names = list(arms)
    try:
        for r in range(rounds):
            for k, name in enumerate(names[r % len(names) :] + names[: r % len(names)]):
                cmd, config = arms[name]
                server = ServerProcess(cmd[0], root / f"{name}-{r}", fake.base_url, extra_config=config)
                try:
                    result = anyio.run(_measure, server, calls, f"{r}-{k}")
                finally:
                    server.stop()
                out[name]["sequential"].append(result["sequential"])
                out[name]["burst"].append(result["burst"])
                out[name]["errors"] += result["errors"]
    finally:
        fake.close()
    for name in arms:
        for kind in ("sequential", "burst"):
            out[name][f"{kind}_median"] = round(median(out[name][kind]), 2)
    return out


async def _measure(server: ServerProcess, calls: int, tag: str) -> dict[str, Any]:
    client = RawClient("127.0.0.1", server.port)
    try:
        await _sequential(client, "/mcp", [f"warm {tag} {i}" for i in range(20)], 0)  # warm-up
        cpu0 = cpu_seconds(server.pid) or 0.0
        _, errors = await _sequential(client, "/mcp", [f"seq {tag} {i}" for i in range(calls)], 1000)
        cpu1 = cpu_seconds(server.pid) or 0.0
        _, errors2, _ = await _burst(client, "/mcp", [f"burst {tag} {i}" for i in range(calls)], 100000)
        cpu2 = cpu_seconds(server.pid) or 0.0
    finally:
        await client.aclose()
    return {
        "sequential": round((cpu1 - cpu0) * 1000 / calls, 2),
        "burst": round((cpu2 - cpu1) * 1000 / calls, 2),
        "errors": len(errors) + len(errors2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another ReasonKit tree to compare with")
    parser.add_argument("--node", type=Path, help="a folder with node_modules/@modelcontextprotocol/server-…")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--cpu-rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument(
        "--tree", action="append", default=[], metavar="NAME=PATH", help="one more tree to compare (repeats)"
    )
    args = parser.parse_args()
    where = Path(tempfile.mkdtemp(prefix="rk-lean-"))
    arms = {"after": rk_for(None, where)}
    if args.before:
        arms["before"] = rk_for(args.before.resolve(), where)
    for spec in args.tree:
        name, _, path = spec.partition("=")
        arms[name] = rk_for(Path(path).resolve(), where)
    stdio_arms = {name: [*cmd, "serve-mcp"] for name, cmd in arms.items()}
    if args.node:
        nm = args.node.resolve() / "node_modules"
        node = nm / ".bin" / "node"
        server = nm / "@modelcontextprotocol" / "server-sequential-thinking" / "dist" / "index.js"
        if node.exists() and server.exists():
            stdio_arms["node"] = [str(node), str(server)]
    report: dict[str, Any] = {"stdio": bench_stdio(stdio_arms, args.rounds)}
    if "node" in stdio_arms:
        for name in arms:
            pairs = zip(report["stdio"][name]["ms"], report["stdio"]["node"]["ms"], strict=True)
            ratios = [a / b for a, b in pairs]
            report["stdio"][name]["ratio_to_node_median"] = round(median(ratios), 2)
    if not args.skip_cpu:
        # Admission control (issue 12, point 1) would refuse most of a 200-call burst: lift its caps in
        # this checkout so that every arm runs every call (the other tree does not know these keys).
        lifted = "[server]\nmax_concurrent_runs = 1000\nmax_inflight_provider_calls = 4000\n"
        cpu_arms = {name: (cmd, lifted if name == "after" else "") for name, cmd in arms.items()}
        cpu_arms["after, save_runs = false"] = (arms["after"], lifted + "[storage]\nsave_runs = false\n")
        report["cpu_ms_per_call"] = bench_cpu(cpu_arms, args.cpu_rounds, args.calls)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
