"""Section 9: the server's own cost per call against the floors of its stack (issue 26).

Every server runs as its own process on core 0 (`taskset`, bench/pinning.py), the load generator
and the fake provider (at 0 ms) on core 1; each arm makes `calls` tool calls one at a time, and the
server process's CPU time over them / calls is its cost per call. Arms, alternated round by round:

- `echo`: bare uvicorn + starlette answering the JSON body back (bench/floor_servers.py);
- `sdk_quiet` / `sdk_default`: the same `mcp` SDK as ours, the low-level `Server` with one tool,
  stateless streamable HTTP, logging at warnings / as the SDK and uvicorn log by default;
- `rk_cached`: `rk serve-mcp --port`, `bench_one` with a reply in the response cache (no LLM call);
- `rk_uncached`: `bench_one` with distinct queries (one LLM call each);
- `rk_nostore`: as `rk_uncached` with `[storage] save_runs = false` (what the run store costs);
- `rk_four`: `bench_four`, four chained LLM calls per tool call.

In this process, against the same fake provider: the OpenAI SDK's CPU per chat completion
(`AsyncOpenAI.chat.completions.create` with a JSON-schema `response_format`) and a raw HTTP POST of
the same body with `json.loads` of the reply, the denominators of goals 2 and 5."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench.common import REPO, Progress, load_avg, quiet
from bench.load_bench import BENCH_ONE, HEADERS, REPLY, ServerProcess, _parse_reply
from bench.pinning import Plan, generator_pinned, plan
from bench.procs import FakeOpenAI, clean_env, cpu_seconds, free_port
from bench.rawhttp import RawClient
from bench.stats import median

ARMS = ("echo", "sdk_quiet", "sdk_default", "rk_cached", "rk_uncached", "rk_nostore", "rk_four")
LABELS = {
    "echo": "bare uvicorn + starlette JSON echo",
    "sdk_quiet": "minimal server on the same `mcp` SDK, one tool, logging quiet",
    "sdk_default": "minimal SDK server, default logging",
    "rk_cached": "`rk serve-mcp`, a cached tool call (no LLM call)",
    "rk_uncached": "`rk serve-mcp`, an uncached call (1 LLM call, fake at 0 ms)",
    "rk_nostore": "`rk serve-mcp`, uncached, `[storage] save_runs = false`",
    "rk_four": "`rk serve-mcp`, uncached `bench_four` (4 chained LLM calls)",
}
LLM_CALLS = {"rk_uncached": 1, "rk_nostore": 1, "rk_four": 4}

BENCH_FOUR = (
    BENCH_ONE.replace('id = "bench_one"', 'id = "bench_four"')
    .replace('name = "Bench one"', 'name = "Bench four"')
    .replace('result = { step = "answer"', 'result = { step = "d"')
    .split("[[steps]]")[0]
)
for _step, _after in (("a", ""), ("b", "a"), ("c", "b"), ("d", "c")):
    _prompt = "Step {{ inputs.query }} {{ inputs.context }}" + (
        f" after {{{{ steps.{_after}.answer }}}}" if _after else ""
    )
    BENCH_FOUR += (
        f'[[steps]]\nid = "{_step}"\nkind = "generate"\ntemperature = 0\nprompt = "{_prompt}"\n'
        + (f'depends_on = ["{_after}"]\n' if _after else "")
        + '[steps.output]\ntype = "object"\nrequired = ["answer", "confidence"]\n'
        'properties = { answer = { type = "string" }, confidence = { type = "number" } }\n'
    )


class FloorServer:
    """`python -m bench.floor_servers KIND` on a free port, pinned by `prefix`."""

    def __init__(self, kind: str, quiet_logs: bool, prefix: list[str], log: Path):
        self.port = free_port()
        self._log = log.open("w")
        cmd = [*prefix, sys.executable, "-m", "bench.floor_servers", kind, "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*cmd, *(["--quiet"] if quiet_logs else [])],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=clean_env(PYTHONPATH=str(REPO)),
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"floor server {kind} did not start: {log.read_text()[-800:]}")
            time.sleep(0.05)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        return self.proc.returncode


def _body(arm: str, i: int, tag: str) -> bytes:
    tool = {"echo": "echo", "sdk_quiet": "echo", "sdk_default": "echo", "rk_four": "bench_four"}.get(
        arm, "bench_one"
    )
    query = "the cached question" if arm == "rk_cached" else f"{arm} {tag} question {i}"
    msg = {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"query": query}},
    }
    return json.dumps(msg).encode()


async def _calls(port: int, arm: str, n: int, tag: str) -> tuple[float, int]:
    """n calls one at a time: (wall seconds, failures)."""
    client = RawClient("127.0.0.1", port)
    failures = 0
    try:
        t0 = time.perf_counter()
        for i in range(n):
            resp = await client.post("/mcp", _body(arm, i, tag), HEADERS)
            ok = (
                resp.status == 200
                if arm == "echo"
                else _parse_reply(resp)[0]
                if arm.startswith("rk")
                else (resp.status == 200 and '"result"' in resp.text)
            )
            failures += not ok
        return time.perf_counter() - t0, failures
    finally:
        await client.aclose()


def _start(arm: str, rk: str, root: Path, fake_url: str, p: Plan) -> Any:
    if arm == "echo":
        return FloorServer("echo", True, p.prefix(), root / "echo.log")
    if arm.startswith("sdk"):
        return FloorServer("sdk", arm == "sdk_quiet", p.prefix(), root / f"{arm}.log")
    where = root / arm
    (where / "protocols").mkdir(parents=True, exist_ok=True)
    (where / "protocols" / "bench_four.toml").write_text(BENCH_FOUR, encoding="utf-8")
    cfg = "[storage]\nsave_runs = false\n" if arm == "rk_nostore" else ""
    return ServerProcess(rk, where, fake_url, extra_config=cfg, prefix=p.prefix())


def bench_floors(rk: str, *, calls: int = 200, rounds: int = 3, progress: Progress = quiet) -> dict[str, Any]:
    p = plan(1)
    root = Path(tempfile.mkdtemp(prefix="rk-bench-floors-"))
    per: dict[str, dict[str, list[float]]] = {a: {"cpu_ms": [], "rps": [], "load1": []} for a in ARMS}
    failures: dict[str, int] = dict.fromkeys(ARMS, 0)
    servers: dict[str, Any] = {}
    out: dict[str, Any] = {"pinning": p.describe(), "settings": {"calls": calls, "rounds": rounds}}
    with generator_pinned(p):
        fake = FakeOpenAI(latency=0.0, content=json.dumps(REPLY))
        try:
            for arm in ARMS:
                servers[arm] = _start(arm, rk, root, fake.base_url, p)
                anyio.run(_calls, servers[arm].port, arm, min(calls, 20), "warm-up")
            for r in range(rounds):
                for arm in ARMS if r % 2 == 0 else tuple(reversed(ARMS)):
                    pid = servers[arm].pid
                    c0 = cpu_seconds(pid)
                    wall, failed = anyio.run(_calls, servers[arm].port, arm, calls, f"round {r}")
                    c1 = cpu_seconds(pid)
                    if c0 is not None and c1 is not None:
                        per[arm]["cpu_ms"].append((c1 - c0) * 1000 / calls)
                    per[arm]["rps"].append(calls / wall)
                    per[arm]["load1"].append((load_avg() or [0.0])[0])
                    failures[arm] += failed
                progress(f"floors: round {r + 1}/{rounds} done")
            out["sdk_vs_raw"] = anyio.run(sdk_vs_raw, fake.base_url, fake.port, calls)
        finally:
            for server in servers.values():
                server.stop()
            fake.close()
            shutil.rmtree(root, ignore_errors=True)
    out["arms"] = {
        a: {
            **{k: v for k, v in per[a].items()},
            "cpu_ms_min": min(per[a]["cpu_ms"], default=None),
            "cpu_ms_median": median(per[a]["cpu_ms"]) if per[a]["cpu_ms"] else None,
            "cpu_ms_max": max(per[a]["cpu_ms"], default=None),
            "rps_median": median(per[a]["rps"]),
            "failures": failures[a],
            "llm_calls": LLM_CALLS.get(a, 0),
        }
        for a in ARMS
    }
    out["ratios"] = _ratios(per, out["sdk_vs_raw"])
    return out


def _ratio_per_round(per: dict[str, dict[str, list[float]]], num: str, den: str) -> float | None:
    pairs = [a / b for a, b in zip(per[num]["cpu_ms"], per[den]["cpu_ms"], strict=False) if b]
    return round(median(pairs), 2) if pairs else None


def _ratios(per: dict[str, dict[str, list[float]]], sdk: dict[str, Any]) -> dict[str, Any]:
    """The issue's ratios, each the median of per-round ratios (the arms of a round ran side by side)."""
    four = [(f - c) / 4 for f, c in zip(per["rk_four"]["cpu_ms"], per["rk_cached"]["cpu_ms"], strict=False)]
    ours = median(four) if four else None
    return {
        "cached_vs_sdk_quiet": _ratio_per_round(per, "rk_cached", "sdk_quiet"),
        "cached_vs_sdk_default": _ratio_per_round(per, "rk_cached", "sdk_default"),
        "sdk_quiet_vs_echo": _ratio_per_round(per, "sdk_quiet", "echo"),
        "store_share_uncached": (
            round(1 - median(per["rk_nostore"]["cpu_ms"]) / median(per["rk_uncached"]["cpu_ms"]), 2)
            if per["rk_nostore"]["cpu_ms"] and per["rk_uncached"]["cpu_ms"]
            else None
        ),
        "ours_per_llm_call_ms": round(ours, 2) if ours is not None else None,
        "ours_per_llm_call_vs_sdk": round(ours / sdk["sdk_cpu_ms"], 2)
        if ours and sdk.get("sdk_cpu_ms")
        else None,
        "sdk_vs_raw_post": round(sdk["sdk_cpu_ms"] / sdk["raw_cpu_ms"], 1) if sdk.get("raw_cpu_ms") else None,
    }


async def sdk_vs_raw(base_url: str, port: int, calls: int) -> dict[str, Any]:
    """CPU of this process per chat completion: the OpenAI SDK against a raw POST (same body)."""
    from openai import AsyncOpenAI

    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    messages = [{"role": "user", "content": "How should a small team pick a database? " * 8}]
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    body = json.dumps({"model": "gpt-4.1-mini", "messages": messages, "response_format": fmt}).encode()
    sdk = AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    raw = RawClient("127.0.0.1", port)
    try:
        for _ in range(10):  # warm-up: connections, the SDK's lazy imports
            await sdk.chat.completions.create(model="gpt-4.1-mini", messages=messages, response_format=fmt)  # type: ignore[arg-type]
            json.loads(
                (await raw.post("/v1/chat/completions", body, {"content-type": "application/json"})).body
            )
        c0 = time.process_time()
        for _ in range(calls):
            await sdk.chat.completions.create(model="gpt-4.1-mini", messages=messages, response_format=fmt)  # type: ignore[arg-type]
        c1 = time.process_time()
        for _ in range(calls):
            json.loads(
                (await raw.post("/v1/chat/completions", body, {"content-type": "application/json"})).body
            )
        c2 = time.process_time()
    finally:
        await sdk.close()
        await raw.aclose()
    return {"sdk_cpu_ms": (c1 - c0) * 1000 / calls, "raw_cpu_ms": (c2 - c1) * 1000 / calls, "calls": calls}
