"""Section 8: the HTTP server at and beyond capacity, and worker processes (issue 26, goals 3 and 4).

Same set-up as bench/load_bench.py (`rk serve-mcp --port N` as a subprocess, the single-step
`bench_one` protocol, the lean fake OpenAI server in its own process, raw JSON-RPC over HTTP), with
the server on its own cores and the load generator and the fake provider on another (`taskset`,
bench/pinning.py):

- `burst`: one process with `[server] max_concurrent_runs = cap` and a provider latency of
  `BURST_LATENCY` s receives 3 x cap concurrent uncached calls, twice: with the MCP routing headers
  (`Mcp-Method: tools/call`, `Mcp-Name: bench_one`, which 2026-era clients send; the admission front
  refuses these before reading the body) and without them (a handshake-era client; the gate's
  run-slot rule reads the body first). Reported: admitted and refused calls, the refusals' latency
  (p50, p99; goal p99 <= 50 ms), and whether every admitted call completed within its deadline.
- `throughput`: `in_flight` concurrent uncached calls per round, `rounds` rounds, provider latency
  50 ms, every call admitted (`max_concurrent_runs = in_flight`), with `[server] workers` = 1 and
  then 2 (goal: 2 >= 1.8 x 1): calls per second, and the server's CPU per call (the supervisor and
  its workers together), which says whether the second worker found a core of its own.

    python -m bench.admission_bench [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bench.common import Progress, load_avg, quiet
from bench.load_bench import HEADERS, REPLY, ServerProcess, _burst, is_refusal
from bench.pinning import generator_pinned, plan
from bench.procs import FakeOpenAI
from bench.rawhttp import RawClient
from bench.stats import percentile

BURST_LATENCY = 1.0
BURST_DEADLINE = 30
LATENCY = 0.05
REJECT_P99_GOAL_MS = 50.0
WORKERS_GOAL = 1.8
ROUTED = {**HEADERS, "mcp-method": "tools/call", "mcp-name": "bench_one"}


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of a process and each of its descendants (a supervisor and its workers), by pid."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    out: dict[int, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            out[p] = (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return out


async def _burst_arm(port: int, n: int, headers: dict[str, str]) -> dict[str, Any]:
    client = RawClient("127.0.0.1", port)
    failed: list[int] = []
    try:
        queries = [f"burst question {i} {time.time_ns()}" for i in range(n)]
        walls, errors, _ = await _burst(client, "/mcp", queries, 1, failed, headers)
    finally:
        await client.aclose()
    gone = set(failed)
    return {
        "admitted": [w for k, w in enumerate(walls) if k not in gone],
        "failed": failed,
        "walls": walls,
        "errors": errors,
    }


def bench_burst(rk: str, root: Path, cap: int) -> dict[str, Any]:
    p = plan(1)
    cfg = (
        f"[server]\nmax_concurrent_runs = {cap}\nadmission_queue = 0\ntool_deadline_secs = {BURST_DEADLINE}\n"
    )
    out: dict[str, Any] = {
        "cap": cap,
        "calls": 3 * cap,
        "pinning": p.describe(),
        "deadline_s": BURST_DEADLINE,
    }
    with generator_pinned(p):
        fake = FakeOpenAI(latency=BURST_LATENCY, content=json.dumps(REPLY))
        server = ServerProcess(rk, root / "burst", fake.base_url, extra_config=cfg, prefix=p.prefix())
        try:
            # warm-up: the provider client, output-mode negotiation, and a connection for every call
            anyio.run(_burst_arm, server.port, 3 * cap, ROUTED)
            got: dict[str, list[dict[str, Any]]] = {"routed": [], "unrouted": []}
            for arm in ("routed", "unrouted", "unrouted", "routed"):  # ABBA: drift hits both alike
                got[arm].append(
                    anyio.run(_burst_arm, server.port, 3 * cap, ROUTED if arm == "routed" else HEADERS)
                )
            for arm, bursts in got.items():
                out[arm] = _burst_summary(bursts, cap)
                out[arm]["load1"] = (load_avg() or [0.0])[0]
        finally:
            server.stop()
            fake.close()
    return out


def _burst_summary(bursts: list[dict[str, Any]], cap: int) -> dict[str, Any]:
    """The bursts of one arm together: admitted and refused calls, the refusals' latency."""
    admitted: list[float] = []
    refused_walls: list[float] = []
    refusals: list[str] = []
    other: list[str] = []
    for got in bursts:
        walls = [got["walls"][k] for k in got["failed"]]
        mine = [e for e in got["errors"] if is_refusal(e)]
        if len(mine) != len(walls):  # some failures were not refusals: keep the fast ones
            walls = sorted(walls)[: len(mine)]
        admitted += got["admitted"]
        refused_walls += walls
        refusals += mine
        other += [e for e in got["errors"] if not is_refusal(e)]
    calls = 3 * cap * len(bursts)
    return {
        "bursts": len(bursts),
        "admitted": len(admitted),
        "refused": len(refusals),
        "other_errors": other[:5],
        "admitted_all_complete": not other and len(admitted) + len(refusals) == calls,
        "admitted_within_deadline": bool(admitted) and max(admitted) <= BURST_DEADLINE,
        "admitted_max_s": round(max(admitted), 3) if admitted else None,
        "reject_p50_ms": round(percentile(refused_walls, 50) * 1000, 1) if refused_walls else None,
        "reject_p99_ms": round(percentile(refused_walls, 99) * 1000, 1) if refused_walls else None,
    }


async def _rounds(port: int, tag: str, in_flight: int, rounds: int, pid: int) -> dict[str, Any]:
    client = RawClient("127.0.0.1", port)
    done, errors, secs = 0, [], 0.0
    cpu: dict[int, float] = {}
    try:
        await _burst(client, "/mcp", [f"warm {tag} {i}" for i in range(20)], 1)
        for r in range(rounds):
            queries = [f"{tag} round {r} question {i} {time.time_ns()}" for i in range(in_flight)]
            c0 = tree_cpu(pid)
            _, errs, wall = await _burst(client, "/mcp", queries, 1000 * (r + 1))
            for p, c in tree_cpu(pid).items():
                cpu[p] = cpu.get(p, 0.0) + c - c0.get(p, c)
            done += in_flight - len(errs)
            errors += errs
            secs += wall
    finally:
        await client.aclose()
    total = sum(cpu.values())
    shares = (
        sorted((round(100 * c / total) for p, c in cpu.items() if p != pid), reverse=True) if total else []
    )
    return {
        "completed": done,
        "seconds": round(secs, 3),
        "errors": errors[:5],
        "cpu_ms_per_call": round(total * 1000 / done, 2) if done else None,
        "worker_cpu_pct": shares,  # each worker's share of the server's CPU (empty: one process)
    }


def bench_throughput(rk: str, root: Path, workers: int, in_flight: int, rounds: int) -> dict[str, Any]:
    p = plan(workers)
    cfg = f"[server]\nworkers = {workers}\nmax_concurrent_runs = {in_flight}\ntool_deadline_secs = 120\n"
    with generator_pinned(p):
        fake = FakeOpenAI(latency=LATENCY, content=json.dumps(REPLY))
        server = ServerProcess(
            rk, root / f"workers{workers}", fake.base_url, extra_config=cfg, prefix=p.prefix()
        )
        try:
            if workers > 1:  # wait until every worker answers (the supervisor starts them together)
                import httpx

                deadline = time.monotonic() + 30
                while f"reasonkit_server_workers {workers}.0" not in httpx.get(f"{server.url}/metrics").text:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the {workers} workers did not all start within 30 s")
                    time.sleep(0.1)
            got = anyio.run(_rounds, server.port, f"w{workers}", in_flight, rounds, server.pid)
        finally:
            server.stop()
            fake.close()
    got["calls_per_s"] = round(got["completed"] / got["seconds"], 1) if got["seconds"] else 0.0
    got["pinning"] = p.describe()
    got["load1"] = (load_avg() or [0.0])[0]
    return got


def run(
    rk: str, *, cap: int = 32, in_flight: int = 200, rounds: int = 3, progress: Progress = quiet
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="rk-bench-admission-"))
    t0 = time.monotonic()
    progress(f"admission: a burst of {3 * cap} calls at {cap} run slots")
    out: dict[str, Any] = {"burst": bench_burst(rk, root, cap)}
    for workers in (1, 2):
        progress(f"admission: {in_flight} calls in flight, workers = {workers}")
        out[f"workers_{workers}"] = bench_throughput(rk, root, workers, in_flight, rounds)
    one, two = out["workers_1"]["calls_per_s"], out["workers_2"]["calls_per_s"]
    out["throughput_ratio"] = round(two / one, 2) if one else None
    out["settings"] = {
        "in_flight": in_flight,
        "rounds": rounds,
        "latency_ms": LATENCY * 1000,
        "burst_latency_s": BURST_LATENCY,
    }
    out["bench_seconds"] = round(time.monotonic() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.admission_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--rk", default=str(Path(sys.executable).parent / "rk"), help="the rk executable")
    ap.add_argument("--quick", action="store_true", help="a small burst and one round (a smoke run)")
    ap.add_argument("--json", dest="json_path", help="also write the raw results here")
    args = ap.parse_args(argv)
    sizes = {"cap": 8, "in_flight": 40, "rounds": 1} if args.quick else {}
    result = run(args.rk, **sizes)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2))
    from bench.report.admission import admission_section

    print("\n".join(admission_section(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
