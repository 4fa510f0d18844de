"""What the engine benchmarks run: the in-process provider, the sample question and the inputs of
every built-in protocol and profile."""

from __future__ import annotations

import time

from reasonkit.engine import Engine
from reasonkit.engine.result import RunResult
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import Protocol
from reasonkit.providers.base import LLMRequest, LLMResponse, Usage
from reasonkit.providers.fake import FakeProvider

# A typical step: ~1.8k prompt tokens, ~600 output tokens.
USAGE_INPUT, USAGE_OUTPUT = 1800, 600

QUERY = (
    "Should a 12-person SaaS startup rewrite its Python billing service in Rust to cut cloud costs, "
    "given two backend engineers with no Rust experience and a product launch in four months?"
)
CONTEXT = (
    "The billing service handles about 40 requests per second at peak and costs roughly $3,000 a month "
    "to run. Most of its latency is spent waiting on Postgres and the payment provider. The team has "
    "shipped Python for five years; nobody has run Rust in production."
)
PROFILE_INPUTS = {"query": QUERY, "context": CONTEXT}


class BenchProvider(FakeProvider):
    """`reasonkit.providers.fake.FakeProvider` (replies built once per schema; latency 0 returns
    without awaiting anything, latency > 0 awaits `anyio.sleep(latency)` per call) with a fixed usage
    of 1,800 input / 600 output tokens, no request log, and two timings: `stub_seconds`, the time
    spent building replies, and `durations`, each call's start to end (latency > 0 only)."""

    def __init__(self, latency: float = 0.0, model: str = "bench-model"):
        super().__init__(
            name="bench", model=model, latency=latency, usage=Usage(USAGE_INPUT, USAGE_OUTPUT), record=False
        )
        self.stub_seconds = 0.0
        self.durations: list[float] = []

    def reset(self) -> None:
        super().reset()
        self.stub_seconds = 0.0
        self.durations = []

    def respond(self, request: LLMRequest, call: int = 0) -> LLMResponse:
        t0 = time.perf_counter()
        response = super().respond(request, call)
        self.stub_seconds += time.perf_counter() - t0
        return response

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if self.latency <= 0:
            return await super().complete(request)
        t0 = time.perf_counter()
        response = await super().complete(request)
        self.durations.append(time.perf_counter() - t0)
        return response


def protocol_inputs(proto: Protocol) -> dict[str, str]:
    """Required string inputs get the sample question; `context` gets the sample background."""
    out: dict[str, str] = {}
    for name, spec in proto.inputs.items():
        if spec.required:
            out[name] = QUERY
        elif name == "context":
            out[name] = CONTEXT
    return out


async def run_target(engine: Engine, registry: Registry, kind: str, name: str) -> RunResult:
    """One run of a profile (`kind` "profile") or a protocol with the sample inputs."""
    if kind == "profile":
        return await engine.run_profile(name, PROFILE_INPUTS)
    return await engine.run_protocol(name, protocol_inputs(registry.protocol(name)))


def count_calls(res: RunResult) -> int:
    """LLM calls in a run's trace (main calls, samples and repairs, for_each items included)."""
    return sum(len(s.calls) + sum(len(i.calls) for i in s.items) for e in res.entries for s in e.steps)
