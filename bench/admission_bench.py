"""Issue 12: the HTTP server at and beyond capacity (`python -m bench.admission_bench`, under 2 min).

Same set-up as bench/load_bench.py (`rk serve-mcp --port N` as a subprocess, the single-step
`bench_one` protocol, the lean fake OpenAI server in its own process, raw JSON-RPC over HTTP):

- `burst`: one process with `[server] max_concurrent_runs = CAP` and a provider latency of
  `BURST_LATENCY` s receives 3 x CAP concurrent uncached calls. Reported: how many were admitted
  and refused, the refusals' latency (p50, p99; goal p99 <= 50 ms), and whether every admitted call
  completed within its deadline.
- `throughput`: 200 concurrent uncached calls per round, `ROUNDS` rounds, provider latency 50 ms,
  every call admitted (`max_concurrent_runs = 200`), with `[server] workers` = 1 and then 2:
  completed calls per second and the ratio (two processes on the same cores).

One run, ratios: the machine is shared, so the absolute numbers move from run to run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bench.load_bench import REPLY, ServerProcess, _burst
from bench.procs import FakeOpenAI
from bench.rawhttp import RawClient
from bench.stats import percentile

CAP = 32
BURST_LATENCY = 1.0
BURST_DEADLINE = 30
IN_FLIGHT = 200
ROUNDS = 3
LATENCY = 0.05
REJECT_P99_GOAL_MS = 50.0
THROUGHPUT_GOAL = 2.5  # x today's, with workers = 2 (issue 12, point 8)


def _refused(err: str) -> bool:
    return err.startswith("HTTP 503") or "busy, retry in" in err


async def _burst_arm(port: int, n: int) -> dict[str, Any]:
    client = RawClient("127.0.0.1", port)
    try:
        queries = [f"burst question {i} {time.time_ns()}" for i in range(n)]
        walls, errors, _ = await _burst(client, "/mcp", queries, 1)
    finally:
        await client.aclose()
    return {"walls": walls, "errors": errors}


def bench_burst(rk: str, root: Path) -> dict[str, Any]:
    fake = FakeOpenAI(latency=BURST_LATENCY, content=json.dumps(REPLY))
    cfg = (
        f"[server]\nmax_concurrent_runs = {CAP}\nadmission_queue = 0\ntool_deadline_secs = {BURST_DEADLINE}\n"
    )
    server = ServerProcess(rk, root / "burst", fake.base_url, extra_config=cfg)
    try:
        anyio.run(_burst_arm, server.port, CAP)  # warm-up: provider client, negotiation
        got = anyio.run(_burst_arm, server.port, 3 * CAP)
    finally:
        server.stop()
        fake.close()
    walls, errors = got["walls"], got["errors"]
    # _burst records errors without their index: match them to the calls by time (the refusals
    # are the fast ones; every admitted call waits at least one provider latency)
    refused = [w for w in walls if w < BURST_LATENCY]
    admitted = [w for w in walls if w >= BURST_LATENCY]
    other = [e for e in errors if not _refused(e)]
    return {
        "calls": 3 * CAP,
        "cap": CAP,
        "admitted": len(admitted),
        "refused": sum(1 for e in errors if _refused(e)),
        "other_errors": other[:5],
        "admitted_all_complete": not other and len(admitted) + len(refused) == 3 * CAP,
        "admitted_max_s": round(max(admitted), 3) if admitted else None,
        "reject_p50_ms": round(percentile(refused, 50) * 1000, 1) if refused else None,
        "reject_p99_ms": round(percentile(refused, 99) * 1000, 1) if refused else None,
    }


async def _rounds(port: int, tag: str) -> dict[str, Any]:
    client = RawClient("127.0.0.1", port)
    done, errors, secs = 0, [], 0.0
    try:
        await _burst(client, "/mcp", [f"warm {tag} {i}" for i in range(20)], 1)
        for r in range(ROUNDS):
            queries = [f"{tag} round {r} question {i} {time.time_ns()}" for i in range(IN_FLIGHT)]
            walls, errs, wall = await _burst(client, "/mcp", queries, 1000 * (r + 1))
            done += IN_FLIGHT - len(errs)
            errors += errs
            secs += wall
    finally:
        await client.aclose()
    return {"completed": done, "seconds": round(secs, 3), "errors": errors[:5]}


def bench_throughput(rk: str, root: Path, workers: int) -> dict[str, Any]:
    fake = FakeOpenAI(latency=LATENCY, content=json.dumps(REPLY))
    cfg = f"[server]\nworkers = {workers}\nmax_concurrent_runs = {IN_FLIGHT}\ntool_deadline_secs = 120\n"
    server = ServerProcess(rk, root / f"workers{workers}", fake.base_url, extra_config=cfg)
    try:
        if workers > 1:  # wait until every worker answers (the supervisor starts them together)
            import httpx

            deadline = time.monotonic() + 30
            while "reasonkit_server_workers 2.0" not in httpx.get(f"{server.url}/metrics").text:
                if time.monotonic() > deadline:
                    raise RuntimeError("the workers did not all start within 30 s")
                time.sleep(0.1)
        got = anyio.run(_rounds, server.port, f"w{workers}")
    finally:
        server.stop()
        fake.close()
    got["calls_per_s"] = round(got["completed"] / got["seconds"], 1) if got["seconds"] else 0.0
    return got


def run(rk: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="rk-bench-admission-"))
    t0 = time.monotonic()
    out: dict[str, Any] = {"burst": bench_burst(rk, root)}
    out["workers_1"] = bench_throughput(rk, root, 1)
    out["workers_2"] = bench_throughput(rk, root, 2)
    one, two = out["workers_1"]["calls_per_s"], out["workers_2"]["calls_per_s"]
    out["throughput_ratio"] = round(two / one, 2) if one else None
    out["bench_seconds"] = round(time.monotonic() - t0, 1)
    return out


def markdown(r: dict[str, Any]) -> str:
    b, w1, w2 = r["burst"], r["workers_1"], r["workers_2"]
    p99 = b["reject_p99_ms"]
    verdict = "met" if p99 is not None and p99 <= REJECT_P99_GOAL_MS else "missed"
    return "\n".join(
        [
            "## 8. Admission control and worker processes (`python -m bench.admission_bench`)",
            "",
            "Issue 12; one run on the machine above, under 2 minutes (bench/admission_bench.py says what "
            "it does).",
            "",
            f"Burst of {b['calls']} concurrent uncached calls at `max_concurrent_runs = {b['cap']}` "
            f"(provider latency {BURST_LATENCY:g} s):",
            "",
            "| admitted | refused (503 / busy) | other errors | refusal p50 | refusal p99 (goal <= 50 ms) "
            "| slowest admitted call |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {b['admitted']} | {b['refused']} | {len(b['other_errors'])} | {b['reject_p50_ms']} ms "
            f"| {p99} ms ({verdict}) | {b['admitted_max_s']} s |",
            "",
            f"Throughput at {IN_FLIGHT} calls in flight ({ROUNDS} rounds, provider latency "
            f"{LATENCY * 1000:g} ms, every call admitted):",
            "",
            "| `[server] workers` | completed calls | seconds | calls/s |",
            "|---:|---:|---:|---:|",
            f"| 1 | {w1['completed']} | {w1['seconds']} | {w1['calls_per_s']} |",
            f"| 2 | {w2['completed']} | {w2['seconds']} | {w2['calls_per_s']} |",
            "",
            f"workers = 2 / workers = 1: **{r['throughput_ratio']}x** (issue goal: {THROUGHPUT_GOAL:g}x the "
            "single process of before).",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.admission_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--rk", default=str(Path(sys.executable).parent / "rk"), help="the rk executable")
    ap.add_argument("--json", dest="json_path", help="also write the raw results here")
    args = ap.parse_args(argv)
    result = run(args.rk)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2), file=sys.stderr)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
