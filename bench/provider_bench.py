"""Section 1: the provider layer against LiteLLM, on the same fake OpenAI-compatible server.

Arms, each making the same chat-completions request (system + user message, a JSON schema as
`response_format`) to the lean fake server (bench/fake_openai.py, its own process) on 127.0.0.1:

- A `reasonkit`: `reasonkit.providers.stack.build_provider(settings)`, i.e. the provider chain the
  engine uses (retry loop, circuit breaker, no rate limit, response cache OFF via ENABLE_CACHE=false,
  usage and cost accounting, metrics), `await provider.complete(LLMRequest(...))`;
- B `litellm`: `litellm.acompletion(model="openai/<m>", api_base=..., api_key="x", ...)` with its
  defaults (its cost calculation and logging included);
- reference `openai SDK`: the bare `AsyncOpenAI(...).chat.completions.create(...)` that A wraps;
- floor `raw HTTP`: the same request body with bench/rawhttp.py and `json.loads` of the reply: what
  the network and the fake server cost by themselves.

Sequential: each arm makes `calls` calls one after another; added latency per call = median wall
time - the server's fixed latency. Concurrent: `concurrency` workers keep that many calls in flight
until `conc_calls` calls are done; throughput = calls / wall time. In every round the arms run in a
rotating order, and the A/B ratios are taken per round.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from bench.common import Progress, quiet
from bench.procs import FakeOpenAI
from bench.rawhttp import RawClient
from bench.stats import median, percentile

RATIO_GOAL = 1.0
MODEL = "gpt-4.1-mini"
ARMS = ("reasonkit", "litellm", "openai_sdk", "raw_http")
ARM_LABELS = {
    "reasonkit": "A: ReasonKit provider (`build_provider`)",
    "litellm": "B: LiteLLM `acompletion`",
    "openai_sdk": "ref: bare OpenAI SDK",
    "raw_http": "floor: raw HTTP + `json.loads`",
}

SYSTEM = (
    "You are one step of a structured-reasoning protocol. Work only from the material given. "
    "Reply with the JSON object the schema describes and nothing else."
)
USER = (
    "Question: Should a 12-person SaaS startup rewrite its Python billing service in Rust to cut cloud "
    "costs, "
    "given two backend engineers with no Rust experience and a product launch in four months?\n\n"
    "Context: The billing service handles about 40 requests per second at peak and costs roughly $3,000 a "
    "month to run. Most of its latency is spent waiting on Postgres and the payment provider. The team has "
    "shipped Python for five years; nobody has run Rust in production.\n\n"
    "Task: decompose the question into the claims it rests on, say which are load-bearing, and give your "
    "confidence that the rewrite pays for itself within a year."
) * 2
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["answer", "confidence"],
    "properties": {
        "answer": {"type": "string"},
        "claims": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["claim"],
                "properties": {"claim": {"type": "string"}, "load_bearing": {"type": "boolean"}},
            },
        },
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
REPLY = {
    "answer": "Keep the Python service; profile the database calls first.",
    "claims": [{"claim": "Compute dominates cost", "load_bearing": True}],
    "confidence": 0.8,
}

Call = Callable[[], Awaitable[Any]]


def litellm_available() -> str | None:
    """None when LiteLLM can be imported here, else why not."""
    try:
        import importlib.util

        if importlib.util.find_spec("litellm") is None:
            return (
                "LiteLLM is not installed in this environment (run `python -m bench` without --no-venv: "
                "it installs LiteLLM into .bench-venv/)"
            )
    except (ImportError, ValueError) as exc:
        return f"LiteLLM cannot be found: {exc}"
    return None


async def _make_arms(
    fake: FakeOpenAI, data_dir: str
) -> tuple[dict[str, Call], Callable[[], Awaitable[None]], dict[str, Any]]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of the price map
    import litellm
    from openai import AsyncOpenAI

    from reasonkit.config import load_settings
    from reasonkit.observability.metrics import Metrics
    from reasonkit.providers import LLMRequest
    from reasonkit.providers.stack import build_provider

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    settings = load_settings(
        environ={
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "x",
            "LLM_DEFAULT_PROVIDER": "openai",
            "LLM_DEFAULT_MODEL": MODEL,
            "ENABLE_CACHE": "false",
            "REASONKIT_DATA_DIR": data_dir,
        }
    )
    provider = build_provider(settings, metrics=Metrics())
    info: dict[str, Any] = {
        "reasonkit_provider": type(provider).__name__,
        "reasonkit_cache": await provider.cache_health() is not None,
        "reasonkit_breaker": all(c["state"] != "off" for c in provider.circuits().values()),
        "reasonkit_max_retries": settings.llm.providers["openai"].max_retries,
    }
    request = LLMRequest(
        messages=[{"role": "user", "content": USER}],
        system=SYSTEM,
        schema=SCHEMA,
        schema_name="respond",
        temperature=0.3,
        max_tokens=2048,
    )
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "respond", "schema": SCHEMA, "strict": False},
    }
    sdk = AsyncOpenAI(base_url=fake.base_url, api_key="x", max_retries=0)
    raw = RawClient("127.0.0.1", fake.port)
    raw_body = json.dumps(
        {
            "model": MODEL,
            "messages": messages,
            "max_tokens": 2048,
            "temperature": 0.3,
            "response_format": response_format,
        }
    ).encode()
    raw_headers = {"content-type": "application/json", "authorization": "Bearer x"}

    async def a_reasonkit() -> Any:
        resp = await provider.complete(request)
        assert resp.usage.input and resp.cost_usd > 0, "usage and cost accounting"
        return resp

    async def b_litellm() -> Any:
        return await litellm.acompletion(
            model=f"openai/{MODEL}",
            api_base=fake.base_url,
            api_key="x",
            messages=messages,
            response_format=response_format,
            temperature=0.3,
            max_tokens=2048,
        )

    async def ref_sdk() -> Any:
        return await sdk.chat.completions.create(  # type: ignore[call-overload]
            model=MODEL, messages=messages, max_tokens=2048, temperature=0.3, response_format=response_format
        )

    async def floor_raw() -> Any:
        r = await raw.post("/v1/chat/completions", raw_body, raw_headers)
        if r.status != 200:
            raise RuntimeError(f"fake server answered {r.status}")
        return json.loads(r.body)

    async def aclose() -> None:
        await provider.aclose()
        await sdk.close()
        await raw.aclose()

    from importlib.metadata import version

    info["litellm_version"] = version("litellm")
    info["openai_version"] = version("openai")
    return (
        {"reasonkit": a_reasonkit, "litellm": b_litellm, "openai_sdk": ref_sdk, "raw_http": floor_raw},
        aclose,
        info,
    )


async def _sequential(call: Call, n: int) -> tuple[list[float], float]:
    walls = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        walls.append(time.perf_counter() - t0)
    return walls, (time.process_time() - cpu0) / n


async def _concurrent(call: Call, n: int, concurrency: int) -> tuple[list[float], float]:
    walls: list[float] = []
    left = [n]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            t0 = time.perf_counter()
            await call()
            walls.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return walls, time.perf_counter() - t0


def bench_provider(
    *,
    latencies: tuple[float, ...] = (0.0, 0.05),
    rounds: int = 5,
    calls: int = 30,
    warmup: int = 10,
    concurrency: int = 50,
    conc_calls: int = 300,
    progress: Progress = quiet,
) -> dict[str, Any]:
    why = litellm_available()
    if why:
        return {"error": why}
    seq: dict[tuple[str, float], dict[str, list[Any]]] = {
        (a, lat): {"walls": [], "round_p50": [], "cpu": []} for a in ARMS for lat in latencies
    }
    conc: dict[tuple[str, float], dict[str, list[Any]]] = {
        (a, lat): {"walls": [], "throughput": []} for a in ARMS for lat in latencies
    }
    out: dict[str, Any] = {
        "goal_ratio": RATIO_GOAL,
        "settings": {
            "latencies_ms": [x * 1000 for x in latencies],
            "rounds": rounds,
            "calls": calls,
            "warmup": warmup,
            "concurrency": concurrency,
            "conc_calls": conc_calls,
        },
        "labels": ARM_LABELS,
    }
    fake = FakeOpenAI(latency=0.0, content=json.dumps(REPLY), model=MODEL)
    data_dir = tempfile.mkdtemp(prefix="rk-bench-provider-")

    async def main() -> None:
        arms, aclose, info = await _make_arms(fake, data_dir)
        out["info"] = info
        try:
            for name in ARMS:  # warm-up: imports, connection pools, LiteLLM's first-call setup
                for _ in range(warmup):
                    await arms[name]()
            for r in range(rounds):
                order = list(ARMS[r % len(ARMS) :] + ARMS[: r % len(ARMS)])
                for lat in latencies:
                    fake.configure(latency=lat)
                    for name in order:
                        walls, cpu = await _sequential(arms[name], calls)
                        d = seq[(name, lat)]
                        d["walls"] += walls
                        d["round_p50"].append(median(walls))
                        d["cpu"].append(cpu)
                    for name in order:
                        walls, wall = await _concurrent(arms[name], conc_calls, concurrency)
                        c = conc[(name, lat)]
                        c["walls"] += walls
                        c["throughput"].append(conc_calls / wall)
                a, b = (
                    seq[("reasonkit", latencies[-1])]["round_p50"][-1],
                    seq[("litellm", latencies[-1])]["round_p50"][-1],
                )
                progress(
                    f"provider: round {r + 1}/{rounds}: at {latencies[-1] * 1000:g} ms, ReasonKit "
                    f"+{(a - latencies[-1]) * 1000:.2f} ms, LiteLLM +{(b - latencies[-1]) * 1000:.2f} ms per "
                    "call"
                )
            out["fake_requests"] = fake.stats()["requests"]
        finally:
            await aclose()

    try:
        anyio.run(main, backend="asyncio")
    finally:
        fake.close()

    rows = []
    for lat in latencies:
        floor = seq[("raw_http", lat)]["round_p50"]
        for name in ARMS:
            d, c = seq[(name, lat)], conc[(name, lat)]
            added = [(x - lat) * 1000 for x in d["round_p50"]]
            layer = [(x - f) * 1000 for x, f in zip(d["round_p50"], floor, strict=True)]
            rows.append(
                {
                    "arm": name,
                    "latency_ms": lat * 1000,
                    "p50_ms": median(d["walls"]) * 1000,
                    "p99_ms": percentile(d["walls"], 99) * 1000,
                    "added_ms": median(added),
                    "added_rounds_ms": added,
                    "layer_ms": median(layer),
                    "cpu_ms": median(d["cpu"]) * 1000,
                    "conc_throughput": median(c["throughput"]),
                    "conc_throughput_rounds": c["throughput"],
                    "conc_p50_ms": median(c["walls"]) * 1000,
                    "conc_p99_ms": percentile(c["walls"], 99) * 1000,
                }
            )
    out["rows"] = rows
    ratios: list[dict[str, Any]] = []
    for lat in latencies:
        a, b = seq[("reasonkit", lat)], seq[("litellm", lat)]
        floor = seq[("raw_http", lat)]["round_p50"]
        added = [(x - lat) / (y - lat) for x, y in zip(a["round_p50"], b["round_p50"], strict=True)]
        layer = [(x - f) / (y - f) for x, y, f in zip(a["round_p50"], b["round_p50"], floor, strict=True)]
        cpu = [x / y for x, y in zip(a["cpu"], b["cpu"], strict=True)]
        thr = [
            y / x
            for x, y in zip(
                conc[("reasonkit", lat)]["throughput"], conc[("litellm", lat)]["throughput"], strict=True
            )
        ]
        ratios.append(
            {
                "latency_ms": lat * 1000,
                "added_ratio_rounds": added,
                "added_ratio": median(added),
                "layer_ratio_rounds": layer,
                "layer_ratio": median(layer),
                "cpu_ratio": median(cpu),
                "conc_time_ratio_rounds": thr,
                "conc_time_ratio": median(thr),
            }
        )
    out["ratios"] = ratios
    out["met"] = all(r["added_ratio"] < RATIO_GOAL and r["conc_time_ratio"] < RATIO_GOAL for r in ratios)
    return out


# --------------------------------------------------------------------------------------------------
def fake_server_cost(n: int = 200, rounds: int = 3) -> dict[str, Any]:
    """Per-request cost of the fake server at 0 ms, measured with the raw HTTP client: in its own
    process (as sections 1 and 4 run it) against the same server on an event loop in a thread of
    the client's process (as test doubles usually run), where it shares the client's interpreter lock."""
    from bench.fake_openai import InThreadServer

    body = json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
            "max_tokens": 2048,
        }
    ).encode()
    headers = {"content-type": "application/json"}
    own_process = FakeOpenAI(latency=0.0, content=json.dumps(REPLY), model=MODEL)
    names = ("fake_openai", "in_thread")
    res: dict[str, list[float]] = {name: [] for name in names}
    try:
        in_thread = InThreadServer(latency=0.0, content=json.dumps(REPLY), model=MODEL)
    except BaseException:
        own_process.close()
        raise
    try:

        async def main() -> None:
            clients = {
                "fake_openai": RawClient("127.0.0.1", own_process.port),
                "in_thread": RawClient("127.0.0.1", in_thread.port),
            }
            for client in clients.values():
                for _ in range(20):
                    await client.post("/v1/chat/completions", body, headers)
            for r in range(rounds):
                for name in names if r % 2 == 0 else names[::-1]:
                    walls = []
                    for _ in range(n):
                        t0 = time.perf_counter()
                        resp = await clients[name].post("/v1/chat/completions", body, headers)
                        json.loads(resp.body)
                        walls.append(time.perf_counter() - t0)
                    res[name].append(median(walls) * 1000)
            for client in clients.values():
                await client.aclose()

        anyio.run(main, backend="asyncio")
    finally:
        in_thread.close()
        own_process.close()
    return {
        "n": n,
        "rounds": rounds,
        "fake_openai_ms": median(res["fake_openai"]),
        "in_thread_ms": median(res["in_thread"]),
        "rounds_ms": res,
    }
