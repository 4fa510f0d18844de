"""Issue 26, goals 1, 2 and 5: the server's own CPU per call against the floors of our stack, in one
run, round by round (the arms alternate; ratios are taken within a round, so load on this shared
machine hits both sides of a ratio alike).

    python -m bench.overhead_bench [--rounds 3] [--calls 300] [--before TREE] [--profile ARM]

Server arms (CPU time of the server process, user + system from /proc, over `calls` sequential
calls on one keep-alive connection, divided by `calls`):
- `sdk_minimal`: bench/minimal_sdk_server.py, the same `mcp` SDK with one echo tool (the floor);
- `cached`: `rk serve-mcp`, `bench_one` with one query whose reply is already cached (no LLM call);
- `uncached`: `rk serve-mcp`, `bench_one` with distinct queries (one LLM call each) against
  bench/fake_openai.py answering at 0 ms (its own process: not counted).
Client arms (the CPU of a process that only makes the provider call, per call):
- `openai_sdk`: `AsyncOpenAI.chat.completions.create` streaming, as our provider calls a server on
  this machine (`openai_sdk_plain`: the same without streaming);
- `httpx_post`: one `httpx.AsyncClient.post` and `json.loads` of the reply (what a direct path for
  OpenAI-compatible servers would cost, on the HTTP client the SDK itself uses);
- `raw_post`: one POST by bench/rawhttp.py and `json.loads` of the reply (the floor).

Goals: cached / sdk_minimal <= 1.3; (uncached - cached) / openai_sdk <= 2 (our CPU per LLM call
against the SDK's own). `--before TREE` adds the same rk arms for another checkout (`git worktree`
or `git archive | tar -x`), run with this interpreter. `--profile ARM` samples that rk arm with
py-spy (bench/spy.py) in one more pass and adds the fold. Prints one JSON object; the load average
is recorded with every round.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench.common import REPO, load_avg
from bench.lean_bench import rk_for
from bench.load_bench import ServerProcess, _sequential
from bench.procs import FakeOpenAI, clean_env, cpu_seconds, free_port
from bench.rawhttp import RawClient
from bench.stats import median

CACHED_GOAL = 1.3
PER_LLM_CALL_GOAL = 2.0
LIFTED = "[server]\nmax_concurrent_runs = 1000\nmax_inflight_provider_calls = 4000\n"

CLIENT = r"""
import asyncio, json, sys, time
mode, base, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Answer briefly: q"}]}

async def main():
    if mode == "raw_post":
        sys.path.insert(0, sys.argv[4])
        from bench.rawhttp import RawClient
        host, port = base.split("//")[1].split("/")[0].split(":")
        client = RawClient(host, int(port))
        data = json.dumps(body).encode()
        async def one():
            r = await client.post("/v1/chat/completions", data, {"content-type": "application/json"})
            json.loads(r.body)
    elif mode == "httpx_post":
        import httpx
        client = httpx.AsyncClient(base_url=base)
        async def one():
            r = await client.post("/chat/completions", json=body)
            json.loads(r.content)
    else:
        from openai import AsyncOpenAI
        client = AsyncOpenAI(base_url=base, api_key="sk-bench", max_retries=0)
        if mode == "openai_sdk":
            async def one():
                stream = await client.chat.completions.create(
                    **body, stream=True, stream_options={"include_usage": True})
                async for _ in stream:
                    pass
        else:
            async def one():
                await client.chat.completions.create(**body)
    for _ in range(20):
        await one()
    t0 = time.process_time()
    for _ in range(calls):
        await one()
    print((time.process_time() - t0) * 1000 / calls)

asyncio.run(main())
"""


class MinimalServer:
    """bench/minimal_sdk_server.py as a child process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.minimal_sdk_server", "--port", str(self.port)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=clean_env(),
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("bench.minimal_sdk_server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


async def _cpu_per_call(port: int, pid: int, queries: list[str], warm: list[str]) -> tuple[float, int]:
    client = RawClient("127.0.0.1", port)
    try:
        await _sequential(client, "/mcp", warm, 0)
        cpu0 = cpu_seconds(pid) or 0.0
        _, errors = await _sequential(client, "/mcp", queries, 1000)
        cpu1 = cpu_seconds(pid) or 0.0
    finally:
        await client.aclose()
    return (cpu1 - cpu0) * 1000 / len(queries), len(errors)


def client_cpu(mode: str, base_url: str, calls: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, mode, base_url, str(calls), str(REPO)],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    )
    return float(out.stdout.strip().splitlines()[-1])


def rk_arms(cmd: str, root: Path, base_url: str, calls: int, tag: str, spy: str | None) -> dict[str, Any]:
    """cached and uncached CPU per call on one `rk serve-mcp` (and a py-spy fold of arm `spy`)."""
    server = ServerProcess(cmd, root, base_url, extra_config=LIFTED)
    out: dict[str, Any] = {}
    try:
        cached = ["cached query"] * calls
        out["cached"], e1 = anyio.run(_cpu_per_call, server.port, server.pid, cached, ["cached query"] * 20)
        distinct = [f"uncached {tag} {i}" for i in range(calls)]
        warm = [f"warm {tag} {i}" for i in range(20)]
        out["uncached"], e2 = anyio.run(_cpu_per_call, server.port, server.pid, distinct, warm)
        out["errors"] = e1 + e2
        if spy:
            from bench.spy import Recording

            queries = cached if spy == "cached" else [f"spy {tag} {i}" for i in range(calls)]
            with Recording(server.pid) as rec:
                anyio.run(_cpu_per_call, server.port, server.pid, queries, [])
            out["profile"] = rec.fold(top=25)
    finally:
        server.stop()
    return out


def _spread(xs: list[float]) -> dict[str, float]:
    return {"min": round(min(xs), 3), "median": round(median(xs), 3), "max": round(max(xs), 3)}


def run(rounds: int, calls: int, trees: dict[str, str], spy: str | None) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="rk-overhead-"))
    fake = FakeOpenAI(latency=0.0, content=json.dumps({"answer": "ok", "confidence": 0.8}))
    per: list[dict[str, Any]] = []
    try:
        for r in range(rounds):
            row: dict[str, Any] = {"loadavg": load_avg()}
            minimal = MinimalServer()
            try:
                row["sdk_minimal"], _ = anyio.run(
                    _cpu_per_call, minimal.port, minimal.pid, ["q"] * calls, ["w"] * 20
                )
            finally:
                minimal.stop()
            for name, cmd in trees.items():
                arms = rk_arms(cmd, root / f"{name}-{r}", fake.base_url, calls, f"{name}{r}", None)
                row.update({f"{name}.{k}": v for k, v in arms.items()})
            for mode in ("openai_sdk", "openai_sdk_plain", "httpx_post", "raw_post"):
                row[mode] = client_cpu(mode, fake.base_url, calls)
            row["loadavg_end"] = load_avg()
            print(f"[overhead] round {r + 1}: {json.dumps(row)}", file=sys.stderr, flush=True)
            per.append(row)
        profile = None
        if spy:
            profile = rk_arms(trees["after"], root / "spy", fake.base_url, calls, "spy", spy)["profile"]
    finally:
        fake.close()
    return summarise(per, trees, profile)


def summarise(per: list[dict[str, Any]], trees: dict[str, str], profile: Any) -> dict[str, Any]:
    keys = [k for k in per[0] if not k.startswith("loadavg") and not k.endswith(".errors")]
    out: dict[str, Any] = {"rounds": per, "cpu_ms_per_call": {k: _spread([p[k] for p in per]) for k in keys}}
    ratios: dict[str, Any] = {}
    for name in trees:
        cached = [p[f"{name}.cached"] / p["sdk_minimal"] for p in per]
        llm = [(p[f"{name}.uncached"] - p[f"{name}.cached"]) / p["openai_sdk"] for p in per]
        ratios[f"{name}: cached / sdk_minimal (goal <= {CACHED_GOAL})"] = _spread(cached)
        ratios[f"{name}: (uncached - cached) / openai_sdk (goal <= {PER_LLM_CALL_GOAL})"] = _spread(llm)
    if "before" in trees:
        for arm in ("cached", "uncached"):
            ratios[f"after / before, {arm}"] = _spread([p[f"after.{arm}"] / p[f"before.{arm}"] for p in per])
    ratios["openai_sdk / raw_post"] = _spread([p["openai_sdk"] / p["raw_post"] for p in per])
    ratios["openai_sdk / httpx_post"] = _spread([p["openai_sdk"] / p["httpx_post"] for p in per])
    out["ratios"] = ratios
    if profile is not None:
        out["profile"] = profile
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--before", type=Path, help="another ReasonKit tree to compare with")
    parser.add_argument("--profile", choices=("cached", "uncached"), help="py-spy one rk arm")
    args = parser.parse_args()
    where = Path(tempfile.mkdtemp(prefix="rk-overhead-bin-"))
    trees = {"after": rk_for(None, where)[0]}
    if args.before:
        trees["before"] = rk_for(args.before.resolve(), where)[0]
    print(json.dumps(run(args.rounds, args.calls, trees, args.profile), indent=1))


if __name__ == "__main__":
    main()
