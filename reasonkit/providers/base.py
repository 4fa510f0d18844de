"""The one async provider interface: messages + a JSON schema in; text, parsed object and usage out."""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import anyio

from reasonkit.errors import ProviderError

__all__ = [
    "LLMRequest",
    "LLMResponse",
    "PriceTable",
    "Provider",
    "StopReason",
    "TextSink",
    "Usage",
    "parse_retry_after",
    "with_retries",
]

# `repetition`: the provider cut the reply because it was repeating itself (providers/repetition.py)
StopReason = Literal["end", "max_tokens", "repetition", "other"]
TextSink = Callable[[str], None]


@dataclass
class Usage:
    """Normalized token usage. `input` never includes cache reads or writes."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
        }


@dataclass
class LLMRequest:
    messages: list[dict[str, str]]
    system: str | None = None
    schema: dict[str, Any] | None = None
    schema_name: str = "respond"
    temperature: float | None = None
    max_tokens: int = 2048
    model: str | None = None
    # Called with each piece of the reply as it is generated, by the providers that see it (the
    # embedded model, a streamed reply); may be called from a worker thread. Not part of the cache
    # key: it only watches.
    on_text: TextSink | None = None


@dataclass
class LLMResponse:
    text: str
    parsed: dict[str, Any] | None
    stop_reason: StopReason
    usage: Usage
    provider: str
    model: str
    cost_usd: float = 0.0
    price_known: bool = True
    latency_ms: float = 0.0
    attempts: int = 1
    structured: str = "native"  # how the schema was requested: native | json_text (schema in the prompt only)
    # The output mode the reply was asked in (providers/negotiation.py): json_schema | json_object |
    # tools | prompt; None without a schema or from providers that do not negotiate.
    output_mode: str | None = None
    # Set by the resilience wrappers (providers/fallback.py, providers/cache.py):
    cached: bool = False  # served from the response cache: no tokens used, no cost
    cache_layer: str | None = None  # memory | redis, when cached
    # Providers skipped or given up on before this one answered, in order:
    # [{"provider": "anthropic", "reason": "circuit_open" | "rate_limited" | <error kind>, "detail": "..."}]
    fallbacks: list[dict[str, str]] = field(default_factory=list)


class Provider(ABC):
    """A provider, or a wrapper around one (`providers/wrapper.py`). Everything callers ask of a
    provider is declared here with a default, so no caller has to probe with `getattr`, and a
    wrapper knows exactly what to forward."""

    name: str
    model: str
    base_url: str | None = None  # where requests go (None: in process, or the client's own)
    max_retries: int = 0  # retries of its own retry loop (`with_retries`); a probe sets 0

    @abstractmethod
    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    def refusal(self) -> ProviderError | None:
        """The error a call would get now without being sent (an open circuit breaker), else None.
        A rate limiter asks before it spends a slot on a call that would not go out."""
        return None

    async def list_models(self, request_timeout: float = 3.0) -> list[str] | None:
        """The models the server lists (`rk providers check`); None: nothing to list."""
        return None

    async def cache_health(self) -> dict[str, Any] | None:
        """The response cache's health (see cache.ResponseCache.health); None without a cache."""
        return None

    def circuits(self) -> dict[str, dict[str, Any]]:
        """Provider name -> its circuit breaker (`state`, `failures`, `retry_in_secs` when open), for
        `/health`; empty without breakers."""
        return {}

    async def aclose(self) -> None:
        return None

    def unpriced_models(self) -> list[str]:
        """Models this provider may call whose price is not in the price table: a cost budget cannot
        be enforced on them (their cost counts as 0). Free providers (local, fake) have none."""
        return []

    def output_modes(self) -> list[dict[str, Any]]:
        """How this provider asks for structured output (see providers/negotiation.py): one row per
        (provider, base_url, model) with `mode`, `state` (untested | works | forced) and `failed`.
        Empty for providers that have nothing to negotiate."""
        return []


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


T = TypeVar("T")


async def with_retries(
    call: Callable[[], Awaitable[T]],
    max_retries: int,
    base_delay: float = 0.5,
    max_delay: float = 20.0,
    on_retry: Callable[[ProviderError, int, float], None] | None = None,
) -> tuple[T, int]:
    """Our single retry loop (SDK retries are off): exponential backoff with full jitter, honouring
    Retry-After when the server sends one. Only retryable ProviderErrors are retried.
    A Retry-After longer than `max_delay` is not waited for: the error is raised at once (so a
    fallback provider can answer instead), its message saying how long the server asked to wait.
    Returns (result, attempts); the raised error carries `attempts`."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except ProviderError as exc:
            exc.attempts = attempt
            if not exc.retryable or attempt > max_retries:
                raise
            if exc.retry_after is not None and exc.retry_after > max_delay:
                err = ProviderError(
                    exc.provider,
                    exc.kind,
                    f"{exc.message} (the server asked to wait {exc.retry_after:g}s, longer than the "
                    f"{max_delay:g}s retry cap, so it was not retried)",
                    exc.status,
                    exc.retry_after,
                )
                err.attempts = attempt
                raise err from None
            if exc.retry_after is not None:
                delay = exc.retry_after
            else:
                delay = random.uniform(0, min(max_delay, base_delay * (2 ** (attempt - 1))))
            if on_retry:
                on_retry(exc, attempt, delay)
            await anyio.sleep(delay)


@dataclass
class PriceTable:
    prices: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def load(cls, overrides: dict[str, dict[str, float]] | None = None) -> PriceTable:
        import tomllib
        from importlib.resources import files

        data = tomllib.loads(files("reasonkit.data").joinpath("prices.toml").read_text("utf-8"))
        for model, p in (overrides or {}).items():
            data[model] = {**data.get(model, {}), **p}
        return cls(data)

    def lookup(self, model: str) -> dict[str, float] | None:
        best = None
        for prefix in self.prices:
            if model.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return self.prices[best] if best else None

    def cost(self, model: str, usage: Usage) -> tuple[float, bool]:
        p = self.lookup(model)
        if p is None:
            return 0.0, False
        usd = (
            usage.input * p.get("input", 0.0)
            + usage.output * p.get("output", 0.0)
            + usage.cache_read * p.get("cache_read", p.get("input", 0.0))
            + usage.cache_write * p.get("cache_write", p.get("input", 0.0))
        ) / 1_000_000
        return usd, True
