"""Section 4: `rk serve-mcp --port N` under load.

The server runs as a subprocess with default settings except where its provider points: a single-step
user protocol (`bench_one`, one LLM call per tool call, step temperature 0 so the response cache
applies) in a temporary `[protocols] dirs`, and `OPENAI_BASE_URL` at the lean fake OpenAI server
(bench/fake_openai.py, its own process) answering every request after a fixed latency.

The load generator is raw JSON-RPC over HTTP (bench/rawhttp.py: one `POST /mcp` per `tools/call`, stateless
streamable HTTP, handshake-era `MCP-Protocol-Version: 2025-11-25`, the reply read from its SSE
event), not the SDK's `mcp.Client`: a Client per call would add an initialize round trip and
several milliseconds of client CPU per call on the same two cores, and that would be measured as
server overhead. One call through `mcp.Client` checks the server end to end before the load.

Per call, overhead = wall time - LLM layers x provider latency (bench_one: one layer; a cached call:
none). Arms, alternated round by round on one server process:
- `uncached`: 200 concurrent calls with distinct queries (every call is a cache miss and one LLM call);
- `cached`: 200 concurrent calls of a query whose reply is already cached (no LLM call);
- `faults`: as `uncached` while the fake answers HTTP 500 to every 10th request (the provider's retry
  loop with its default backoff handles them).
Alone (one call at a time): the same with and without the cache, for the per-call floor.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from bench.common import Progress, quiet
from bench.procs import FakeOpenAI, clean_env, cpu_seconds, free_port, peak_rss_mb, reset_peak, rss_mb
from bench.rawhttp import RawClient, Response
from bench.stats import median, percentile

P99_GOAL_MS = 50.0
RSS_GOAL_MB = 300.0
CACHED_GOAL_MS = 5.0
PROTOCOL_VERSION = "2025-11-25"
REPLY = {"answer": "Keep the Python service; profile the database calls first.", "confidence": 0.8}

BENCH_ONE = """\
id = "bench_one"
name = "Bench one"
description = "One LLM call: the benchmark's single-step protocol."
result = { step = "answer", field = "answer" }
[inputs.query]
type = "string"
required = true
description = "The question."
[inputs.context]
type = "string"
description = "Background."
[[steps]]
id = "answer"
kind = "generate"
temperature = 0
prompt = "Answer briefly: {{ inputs.query }}{{#if inputs.context}} Context: {{ inputs.context }}{{/if}}"
[steps.output]
type = "object"
required = ["answer", "confidence"]
properties = { answer = { type = "string" }, confidence = { type = "number" } }
"""


class ServerProcess:
    """`rk serve-mcp --port N` with its own config, data dir and HOME under `root`."""

    def __init__(
        self,
        rk: str,
        root: Path,
        base_url: str,
        extra_env: dict[str, str] | None = None,
        extra_config: str = "",
        prefix: list[str] | None = None,
    ):
        """`prefix`: put before the command line, e.g. `taskset -c 0` (bench/pinning.py)."""
        (root / "protocols").mkdir(parents=True, exist_ok=True)
        (root / "home").mkdir(exist_ok=True)
        (root / "protocols" / "bench_one.toml").write_text(BENCH_ONE, encoding="utf-8")
        cfg = root / "config.toml"
        cfg.write_text(
            f"[protocols]\ndirs = [{json.dumps(str(root / 'protocols'))}]\n{extra_config}", encoding="utf-8"
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = clean_env(
            HOME=str(root / "home"),
            REASONKIT_CONFIG=str(cfg),
            REASONKIT_DATA_DIR=str(root / "data"),
            OPENAI_BASE_URL=base_url,
            LLM_DEFAULT_PROVIDER="openai",
            **(extra_env or {}),
        )
        self.log_path = root / "server.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [*(prefix or []), rk, "serve-mcp", "--port", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=env,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                tail = self.log()[-1500:]
                self.stop()
                raise RuntimeError(f"rk serve-mcp exited with status {self.proc.returncode}: {tail}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("rk serve-mcp did not become ready within 30 s")
            time.sleep(0.05)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        return self.proc.returncode


class RSSSampler:
    """Samples a process's RSS every `interval` seconds in a thread (the max, for systems where
    VmHWM cannot be reset)."""

    def __init__(self, pid: int, interval: float = 0.01):
        self.pid, self.interval = pid, interval
        self.max_mb = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            v = rss_mb(self.pid)
            if v is not None:
                self.max_mb = max(self.max_mb, v)
            self._stop.wait(self.interval)

    def __enter__(self) -> RSSSampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def _call_body(i: int, query: str) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": "bench_one", "arguments": {"query": query}},
        }
    ).encode()


HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": PROTOCOL_VERSION,
}


def _parse_reply(resp: Response) -> tuple[bool, str]:
    """(ok, error text) of one tools/call answer (JSON or one SSE event)."""
    if resp.status != 200:
        return False, f"HTTP {resp.status}"
    text = resp.text
    msg: dict[str, Any] | None = None
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        for line in text.splitlines():
            if line.startswith("data:"):
                cand = json.loads(line[5:])
                if "id" in cand and ("result" in cand or "error" in cand):
                    msg = cand
    else:
        msg = json.loads(text)
    if msg is None:
        return False, "no JSON-RPC reply in the response"
    if "error" in msg:
        return False, f"JSON-RPC error {msg['error'].get('code')}: {str(msg['error'].get('message'))[:120]}"
    res = msg["result"]
    if res.get("isError"):
        return False, "tool error: " + str((res.get("content") or [{}])[0].get("text", ""))[:160]
    sc = res.get("structuredContent") or {}
    if sc.get("complete") is not True:
        return False, f"incomplete run (status {sc.get('status')})"
    return True, ""


def is_refusal(err: str) -> bool:
    """An admission refusal (HTTP 503 with Retry-After, or the busy tool error), not a failure: the
    server declined work it could not take on in time."""
    return err.startswith("HTTP 503") or "busy, retry in" in err


async def _burst(
    client: RawClient,
    url: str,
    queries: list[str],
    start_id: int,
    failed: list[int] | None = None,
    headers: dict[str, str] = HEADERS,
) -> tuple[list[float], list[str], float]:
    """All calls at once; per-call wall seconds, error texts, and the burst's wall time. `failed`
    collects the indexes of the calls that did not succeed (refusals included)."""
    walls: list[float] = [0.0] * len(queries)
    errors: list[str] = []
    gate = anyio.Event()

    async def one(k: int, q: str) -> None:
        await gate.wait()
        t0 = time.perf_counter()
        try:
            resp = await client.post(url, _call_body(start_id + k, q), headers)
            ok, err = _parse_reply(resp)
        except (OSError, ValueError, EOFError) as exc:
            ok, err = False, f"{type(exc).__name__}: {exc}"[:160]
        walls[k] = time.perf_counter() - t0
        if not ok:
            errors.append(err)
            if failed is not None:
                failed.append(k)

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for k, q in enumerate(queries):
            tg.start_soon(one, k, q)
        await anyio.lowlevel.checkpoint()
        t0 = time.perf_counter()
        gate.set()
    return walls, errors, time.perf_counter() - t0


async def _sequential(
    client: RawClient, url: str, queries: list[str], start_id: int
) -> tuple[list[float], list[str]]:
    walls, errors = [], []
    for k, q in enumerate(queries):
        t0 = time.perf_counter()
        resp = await client.post(url, _call_body(start_id + k, q), HEADERS)
        walls.append(time.perf_counter() - t0)
        ok, err = _parse_reply(resp)
        if not ok:
            errors.append(err)
    return walls, errors


async def _provider_floor(client: RawClient, n: int) -> list[float]:
    """The load generator alone: n concurrent chat-completion POSTs straight to the fake provider."""
    body = json.dumps({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "floor"}]}).encode()
    walls = [0.0] * n
    gate = anyio.Event()

    async def one(k: int) -> None:
        await gate.wait()
        t0 = time.perf_counter()
        r = await client.post("/v1/chat/completions", body, {"content-type": "application/json"})
        json.loads(r.body)
        walls[k] = time.perf_counter() - t0

    async with anyio.create_task_group() as tg:
        for k in range(n):
            tg.start_soon(one, k)
        await anyio.lowlevel.checkpoint()
        gate.set()
    return walls


async def _client_check(url: str) -> dict[str, Any]:
    """One tools/list + tools/call through the SDK's own client (streamable HTTP)."""
    from mcp import Client

    t0 = time.perf_counter()
    async with Client(f"{url}/mcp", mode="legacy", cache=None) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        r = await client.call_tool("bench_one", {"query": "sdk client check"})
    return {
        "tools": len(names),
        "has_bench_one": "bench_one" in names,
        "ok": (not r.is_error) and bool(r.structured_content and r.structured_content.get("complete")),
        "wall_ms": (time.perf_counter() - t0) * 1000,
    }


def _summ(walls: list[float], layers: int, latency: float) -> dict[str, Any]:
    over = [(w - layers * latency) * 1000 for w in walls]
    return {
        "n": len(walls),
        "wall_p50_ms": median(walls) * 1000,
        "overhead_p50_ms": median(over),
        "overhead_p90_ms": percentile(over, 90),
        "overhead_p99_ms": percentile(over, 99),
        "overhead_max_ms": max(over) if over else float("nan"),
    }


def bench_load(
    rk: str,
    *,
    calls: int = 200,
    rounds: int = 3,
    latency: float = 0.05,
    fail_every: int = 10,
    alone: int = 20,
    profile: bool = True,
    diagnostics: bool = True,
    progress: Progress = quiet,
) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="rk-bench-load-"))
    arms = ("uncached", "cached", "faults")
    per: dict[str, dict[str, Any]] = {
        a: {
            "walls": [],
            "errors": [],
            "refused": [],
            "rounds": [],
            "rss_peak_mb": [],
            "cpu_ms_per_call": [],
            "provider_requests": [],
            "injected": [],
        }
        for a in arms
    }
    out: dict[str, Any] = {
        "goals": {
            "p99_overhead_ms": P99_GOAL_MS,
            "peak_rss_mb": RSS_GOAL_MB,
            "cached_call_ms": CACHED_GOAL_MS,
            "errors": 0,
        },
        "settings": {
            "calls": calls,
            "rounds": rounds,
            "latency_ms": latency * 1000,
            "fail_every": fail_every,
            "alone": alone,
            "protocol_version": PROTOCOL_VERSION,
        },
    }
    fake = FakeOpenAI(latency=latency, content=json.dumps(REPLY))
    server: ServerProcess | None = None
    try:
        server = ServerProcess(rk, root, fake.base_url)
        out["rss_idle_mb"] = rss_mb(server.pid)
        url = "/mcp"

        async def main() -> None:
            client = RawClient("127.0.0.1", server.port)
            floor_client = RawClient("127.0.0.1", fake.port)
            try:
                out["sdk_client_check"] = await _client_check(server.url)
                # Warm-up: the provider is built on the first call; fill the connection pool; cache one reply.
                await _burst(client, url, [f"warm-up {k}" for k in range(min(calls, 50))], 10_000)
                await _sequential(client, url, ["the cached question"], 20_000)
                out["rss_warm_mb"] = rss_mb(server.pid)
                # Alone: one call at a time.
                w, e = await _sequential(client, url, [f"alone {k}" for k in range(alone)], 30_000)
                out["alone_uncached"] = {**_summ(w, 1, latency), "errors": len(e)}
                w, e = await _sequential(client, url, ["the cached question"] * alone, 40_000)
                out["alone_cached"] = {**_summ(w, 0, latency), "errors": len(e)}
                floor: list[float] = []
                next_id = 100_000
                for r in range(rounds):
                    order = list(arms) if r % 2 == 0 else list(reversed(arms))
                    for arm in order:
                        d = per[arm]
                        fake.configure(fail_every=fail_every if arm == "faults" else 0)
                        fake.reset()
                        queries = (
                            ["the cached question"] * calls
                            if arm == "cached"
                            else [f"{arm} r{r} q{k}" for k in range(calls)]
                        )
                        reset_peak(server.pid)
                        cpu0 = cpu_seconds(server.pid)
                        failed: list[int] = []
                        with RSSSampler(server.pid) as sampler:
                            walls, errors, burst_s = await _burst(client, url, queries, next_id, failed)
                        refused = [e for e in errors if is_refusal(e)]
                        errors = [e for e in errors if not is_refusal(e)]
                        gone = set(failed)
                        walls = [w for k, w in enumerate(walls) if k not in gone]  # the answered calls
                        cpu1 = cpu_seconds(server.pid)
                        next_id += calls
                        st = fake.stats()
                        hwm = peak_rss_mb(server.pid)
                        d["walls"] += walls
                        d["errors"] += errors
                        d["refused"] += refused
                        d["rss_peak_mb"].append(
                            max(x for x in (hwm, sampler.max_mb) if x is not None)
                            if (hwm or sampler.max_mb)
                            else None
                        )
                        d["cpu_ms_per_call"].append(
                            (cpu1 - cpu0) * 1000 / calls if cpu0 is not None and cpu1 is not None else None
                        )
                        d["provider_requests"].append(st["requests"])
                        d["injected"].append(st["failed"])
                        layers = 0 if arm == "cached" else 1
                        d["rounds"].append(
                            {
                                **_summ(walls, layers, latency),
                                "errors": len(errors),
                                "refused": len(refused),
                                "burst_s": burst_s,
                                "provider_requests": st["requests"],
                                "injected_500s": st["failed"],
                            }
                        )
                        progress(
                            f"load: round {r + 1}/{rounds} {arm}: p50 "
                            f"{d['rounds'][-1]['overhead_p50_ms']:.0f} ms, p99 "
                            f"{d['rounds'][-1]['overhead_p99_ms']:.0f} ms over the provider, "
                            f"{len(errors)} errors, {len(refused)} refused, "
                            f"peak RSS {d['rss_peak_mb'][-1] or 0:.0f} MB"
                        )
                    fake.configure(fail_every=0)
                    floor += await _provider_floor(floor_client, calls)
                out["load_generator_floor"] = _summ(floor, 1, latency)
                if profile:
                    from bench.spy import Recording

                    progress("load: profiling the server (py-spy) during three more uncached bursts")
                    with Recording(server.pid) as rec:
                        for k in range(3):
                            await _burst(client, url, [f"profiled {k} {i}" for i in range(calls)], next_id)
                            next_id += calls
                    out["profile"] = rec.fold()
            finally:
                await client.aclose()
                await floor_client.aclose()

        anyio.run(main, backend="asyncio")
        out["rss_peak_process_mb"] = peak_rss_mb(server.pid)  # since the last reset
        out["server_log_tail"] = [ln for ln in server.log().splitlines() if "WARNING" in ln or "ERROR" in ln][
            -5:
        ]
    finally:
        if server is not None:
            out["exit_status"] = server.stop()
        fake.close()
        shutil.rmtree(root, ignore_errors=True)

    for arm in arms:
        d = per[arm]
        layers = 0 if arm == "cached" else 1
        errs: dict[str, int] = {}
        for e in d["errors"]:
            errs[e] = errs.get(e, 0) + 1
        out[arm] = {
            **_summ(d["walls"], layers, latency),
            "n": len(d["walls"]) + len(d["errors"]) + len(d["refused"]),
            "errors": len(d["errors"]),
            "refused": len(d["refused"]),
            "answered": len(d["walls"]),
            "error_kinds": errs,
            "rounds": d["rounds"],
            "rss_peak_mb": max((x for x in d["rss_peak_mb"] if x is not None), default=None),
            "cpu_ms_per_call": median([x for x in d["cpu_ms_per_call"] if x is not None])
            if any(x is not None for x in d["cpu_ms_per_call"])
            else None,
            "provider_requests": sum(d["provider_requests"]),
            "injected_500s": sum(d["injected"]),
        }
    if diagnostics:
        out["store_off"] = bench_store_off(
            rk, calls=calls, rounds=max(1, rounds - 1), latency=latency, progress=progress
        )
    u, c = out["uncached"], out["cached"]
    peak = max(
        (x for x in (u["rss_peak_mb"], c["rss_peak_mb"], out["faults"]["rss_peak_mb"]) if x is not None),
        default=None,
    )
    out["peak_rss_mb"] = peak
    out["met"] = {
        "errors": u["errors"] == 0 and c["errors"] == 0,
        "p99": u["overhead_p99_ms"] <= P99_GOAL_MS,
        "rss": peak is not None and peak <= RSS_GOAL_MB,
        "cached": out["alone_cached"]["wall_p50_ms"] <= CACHED_GOAL_MS,
    }
    return out


def bench_store_off(
    rk: str, *, calls: int = 200, rounds: int = 2, latency: float = 0.05, progress: Progress = quiet
) -> dict[str, Any]:
    """Diagnostic, not a default setting: the `uncached` arm on a server with `[storage] save_runs =
    false`, to show what the run store costs under load."""
    root = Path(tempfile.mkdtemp(prefix="rk-bench-load-nostore-"))
    fake = FakeOpenAI(latency=latency, content=json.dumps(REPLY))
    server: ServerProcess | None = None
    walls: list[float] = []
    errors: list[str] = []
    cpu: list[float] = []
    try:
        server = ServerProcess(rk, root, fake.base_url, extra_config="[storage]\nsave_runs = false\n")

        async def main() -> None:
            assert server is not None
            client = RawClient("127.0.0.1", server.port)
            try:
                await _burst(client, "/mcp", [f"warm-up {k}" for k in range(min(calls, 50))], 1)
                for r in range(rounds):
                    c0 = cpu_seconds(server.pid)
                    w, e, _ = await _burst(
                        client, "/mcp", [f"nostore r{r} q{k}" for k in range(calls)], 1000 * (r + 1)
                    )
                    c1 = cpu_seconds(server.pid)
                    walls.extend(w)
                    errors.extend(e)
                    if c0 is not None and c1 is not None:
                        cpu.append((c1 - c0) * 1000 / calls)
            finally:
                await client.aclose()

        anyio.run(main, backend="asyncio")
    finally:
        if server is not None:
            server.stop()
        fake.close()
        shutil.rmtree(root, ignore_errors=True)
    res = {
        **_summ(walls, 1, latency),
        "errors": len(errors),
        "cpu_ms_per_call": median(cpu) if cpu else None,
        "rounds": rounds,
    }
    progress(
        f"load: diagnostic without the run store: p50 {res['overhead_p50_ms']:.0f} ms, p99 "
        f"{res['overhead_p99_ms']:.0f} ms over the provider"
    )
    return res
