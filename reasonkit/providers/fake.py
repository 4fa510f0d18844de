"""A deterministic in-process provider, like pydantic-ai's `TestModel`: no network, no SDK, no key.

`FakeProvider` answers every `LLMRequest` with the minimal valid object for the request's JSON
schema, built by `fill_schema` (schema_fill.py, which lists what it supports).

The reply's `text` is the object as JSON and `parsed` a fresh copy of it; `usage` is counted from
text lengths (about 4 characters a token) unless a fixed `Usage` is given; `cost_usd` is 0. With
`latency > 0` every call awaits `anyio.sleep(latency)` like a model that always takes that long;
with 0 it returns without awaiting anything (so benchmarks measure the engine alone). A request
with `on_text` gets the reply's text in pieces first, as from a streaming provider. Every request
is kept in `requests` (unless `record=False`), and `calls` / `in_flight` / `peak_in_flight` count
what the provider saw.

Used by the tests (tests/fakes/fake_llm.py serves `fill_schema` objects over HTTP) and by the
benchmarks (bench/engine_bench.py).
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio

from reasonkit.providers.base import LLMRequest, LLMResponse, Provider, Usage
from reasonkit.providers.schema_fill import DEFAULT_CONFIDENCE, fill_schema

__all__ = ["CHARS_PER_TOKEN", "FakeProvider"]

CHARS_PER_TOKEN = 4
STREAM_PIECE = 16  # characters per piece passed to a request's `on_text`


def _fresh_copy(value: Any) -> Any:
    """A copy of a JSON value sharing nothing mutable with it (as fast as json.loads of its text)."""
    if isinstance(value, dict):
        return {k: _fresh_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh_copy(v) for v in value]
    return value


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


class FakeProvider(Provider):
    """Answers every request with `fill_schema(request.schema)` (see the module docstring).

    latency: seconds each call takes (`anyio.sleep`); 0 returns without awaiting anything.
    items / confidence: passed to `fill_schema`.
    usage: a fixed `Usage` for every reply; default: counted from the prompt's and the reply's length.
    distinct: append " #<call number>" to every plain string, so that no two replies are equal
      (by default the same schema always gets the same reply, built once and kept).
    record: keep every request in `requests`.
    """

    def __init__(
        self,
        *,
        name: str = "fake",
        model: str = "fake-model",
        latency: float = 0.0,
        items: int | None = None,
        confidence: float = DEFAULT_CONFIDENCE,
        usage: Usage | None = None,
        distinct: bool = False,
        record: bool = True,
    ):
        self.name = name
        self.model = model
        self.latency = latency
        self.items = items
        self.confidence = confidence
        self.usage = usage
        self.distinct = distinct
        self.record = record
        # id(schema) -> (schema, reply, its JSON text); the schema is kept so its id cannot be reused.
        self._replies: dict[int, tuple[dict[str, Any] | None, Any, str]] = {}
        self.requests: list[LLMRequest] = []
        self.calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    def reset(self) -> None:
        """Forget the requests seen and zero the counters (the replies built so far are kept)."""
        self.requests = []
        self.calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0

    def reply(self, schema: dict[str, Any] | None, call: int = 0) -> tuple[Any, str]:
        """The reply to a request with this schema (as call number `call`) and its JSON text; the
        object is the caller's to change."""
        if self.distinct:
            value = self._fill(schema, f" #{call}")
            return value, json.dumps(value)
        hit = self._replies.get(id(schema))
        if hit is None or hit[0] is not schema:
            value = self._fill(schema, "")
            hit = (schema, value, json.dumps(value))
            self._replies[id(schema)] = hit
        return _fresh_copy(hit[1]), hit[2]

    def _fill(self, schema: dict[str, Any] | None, tag: str) -> Any:
        if not schema:
            return {"answer": "ok" + tag, "confidence": self.confidence}
        return fill_schema(schema, items=self.items, confidence=self.confidence, tag=tag)

    def respond(self, request: LLMRequest, call: int = 0) -> LLMResponse:
        """The response to `request`, built at once (no latency, nothing recorded)."""
        parsed, text = self.reply(request.schema, call)
        if request.on_text is not None:  # as a streaming provider would, in pieces
            for start in range(0, len(text), STREAM_PIECE):
                request.on_text(text[start : start + STREAM_PIECE])
        usage = self.usage
        if usage is None:
            prompt = len(request.system or "") + sum(len(m.get("content") or "") for m in request.messages)
            usage = Usage(input=_tokens(prompt), output=_tokens(len(text)))
        return LLMResponse(
            text=text,
            parsed=parsed if isinstance(parsed, dict) else None,
            stop_reason="end",
            usage=Usage(usage.input, usage.output, usage.cache_read, usage.cache_write),
            provider=self.name,
            model=request.model or self.model,
            cost_usd=0.0,
            price_known=True,
            latency_ms=self.latency * 1000,
        )

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        call = self.calls
        if self.record:
            self.requests.append(request)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            response = self.respond(request, call)
            if self.latency > 0:
                await anyio.sleep(self.latency)
            return response
        finally:
            self.in_flight -= 1
