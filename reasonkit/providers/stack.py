"""The one place the provider chain is built, for the CLI (`rk think`, `rk eval`), the server and
the probes alike. Outermost first, a call goes through:

    RedactingProvider   [privacy] redact_provider_input: PII out of the prompt     (for_run)
    TracedProvider      [tracing]: one span per provider call                        (for_run)
    MeteredProvider     latency, tokens, cost, errors in the metrics                 (for_run)
    LimitedProvider     the server's provider-call cap (max_inflight_provider_calls) (limited)
    FallbackProvider    [default provider, *fallback_provider], in order             (build_provider)
      per provider:
      CachedProvider      response cache, its own key per provider and model
      RateLimitedProvider requests_per_minute (queue / drop / fallback)
      BreakerProvider     circuit breaker (open -> skipped)
      the kind's provider our one retry loop with backoff (`with_retries`) and a whole-attempt
                          timeout; inside one attempt a rejected output mode moves on to the next
                          mode at once (negotiation.py), so a rejection never costs a retry

`build_provider` returns the chain from `FallbackProvider` down; the server puts `limited` around
it once for its lifetime; the run service puts `for_run` around whatever provider a run uses (the
chain, client sampling) at each run, since tracing and redaction may change with a reload. Each
wrapper holds one concern (providers/wrapper.py); what a kind is comes from the kind registry
(reasonkit/provider_kinds.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from loguru import logger

from reasonkit import provider_kinds
from reasonkit.config import ProviderSettings, Settings
from reasonkit.errors import NoProviderConfigured, ProviderError
from reasonkit.providers import (
    SETUP_HELP,
    choose_provider_name,
    import_named,
    is_configured,
    output_mode_setting,
)
from reasonkit.providers.base import PriceTable, Provider
from reasonkit.providers.discovery import discover_model, needs_discovery

if TYPE_CHECKING:
    from reasonkit.observability.metrics import Metrics
    from reasonkit.providers.cache import ResponseCache

__all__ = ["build_one", "build_provider", "for_run", "limited", "retry_hook"]


def _role(name: str, fallback: bool) -> str:
    return f"fallback provider '{name}' (from [llm] fallback_provider)" if fallback else f"provider '{name}'"


def _kind_of(settings: Settings, name: str, fallback: bool) -> provider_kinds.ProviderKind:
    """The registry row that builds provider `name`: its `kind`, else the kind of that name."""
    ps = settings.llm.providers.get(name)
    kind = provider_kinds.KINDS.get(ps.kind if ps and ps.kind else name)
    if kind is None:
        known = ", ".join(sorted({*provider_kinds.kind_names(), *settings.llm.providers}))
        wires = " or ".join(f'"{w}"' for w in provider_kinds.wire_formats())
        raise NoProviderConfigured(
            f"unknown {_role(name, fallback)} (known: {known}). Add [llm.providers.{name}] with "
            f"kind = {wires} and api_base."
        )
    return kind


def build_one(
    settings: Settings, name: str, model: str | None, *, fallback: bool, metrics: Metrics
) -> Provider:
    """Provider `name` of its kind, from the settings, with no wrapper around it. Raises
    `NoProviderConfigured` saying what to set."""
    kind = _kind_of(settings, name, fallback)
    if kind.in_process:
        try:
            build = import_named(kind.provider)
        except ImportError:
            raise NoProviderConfigured(
                f"the {name} provider is not part of this installation: pip install 'reasonkit[{kind.extra}]'"
            ) from None
        return build(settings, name=name)  # type: ignore[no-any-return]
    ps = settings.llm.providers.get(name)
    if ps is None or not is_configured(settings, name):
        what = "is selected but" if not fallback else "is listed but"
        raise NoProviderConfigured(
            f"{_role(name, fallback)} {what} has no API key or base URL.\n" + SETUP_HELP
        )
    # LLM_DEFAULT_MODEL names a model of the default provider; a fallback uses its own.
    own = provider_kinds.KINDS.get(name)  # a table named like a kind gets that kind's defaults
    if own is not None and own.in_process:  # (an in-process kind's defaults are not for the wire)
        own = None
    default_model = None if fallback else settings.llm.default_model
    base_url = ps.api_base or (own.endpoint if own else None)
    provider_class = import_named(kind.provider)

    def make(chosen: str) -> Provider:
        return provider_class(  # type: ignore[no-any-return]
            name,
            chosen,
            PriceTable.load(settings.llm.prices),
            api_key=ps.api_key.get_secret_value() if ps.api_key else None,
            base_url=base_url,
            timeout=ps.timeout_secs,
            max_retries=ps.max_retries,
            output_mode=output_mode_setting(settings, name),
            retry_base_delay=ps.retry_base_delay_secs,
            retry_max_delay=ps.retry_max_delay_secs,
            on_retry=retry_hook(metrics, name),
        )

    chosen_model = model or ps.model or default_model
    if not chosen_model and base_url and needs_discovery(kind, base_url):
        chosen_model = discover_model(
            name, base_url, make, own.default_model if own else None
        )  # an Ollama-like server: ask it
    chosen_model = chosen_model or (own.default_model if own else None)
    if not chosen_model:
        hint = "" if fallback else "LLM_DEFAULT_MODEL or "
        raise NoProviderConfigured(
            f"no model set for {_role(name, fallback)}: set {hint}[llm.providers.{name}] model"
        )
    return make(chosen_model)


def _leg(
    settings: Settings,
    name: str,
    provider: Provider,
    metrics: Metrics,
    *,
    cache: ResponseCache | None,
    scrub: Callable[[str], str],
    can_fall_back: bool,
) -> Provider:
    """One provider of the chain behind its breaker, rate limit and cache (those the settings ask
    for); `can_fall_back`: another provider follows it."""
    from reasonkit.providers.breaker import BreakerProvider, CircuitBreaker, breaker_hook
    from reasonkit.providers.cached import CachedProvider
    from reasonkit.providers.rate_limit import ClientRateLimiter, RateLimitedProvider

    ps = settings.llm.providers.get(name) or ProviderSettings()  # `local` may have no section
    if ps.breaker_threshold > 0:
        breaker = CircuitBreaker(
            name, ps.breaker_threshold, ps.breaker_cooldown_secs, on_change=breaker_hook(metrics)
        )
        provider = BreakerProvider(provider, breaker, metrics, scrub)
    rl = settings.llm.rate_limiting
    rpm = ps.requests_per_minute or rl.requests_per_minute
    if rpm:
        limiter = ClientRateLimiter(name, rpm, rl.strategy, rl.queue_size, rl.burst, metrics)
        provider = RateLimitedProvider(provider, limiter, can_fall_back=can_fall_back)
    if cache is not None:
        provider = CachedProvider(provider, cache)
    return provider


def _secrets(settings: Settings) -> list[str | None]:
    secrets: list[str | None] = [
        p.api_key.get_secret_value() if p.api_key else None for p in settings.llm.providers.values()
    ]
    if settings.database.redis.url:
        secrets.append(settings.database.redis.url.get_secret_value())
    return secrets


def build_provider(
    settings: Settings, name: str | None = None, model: str | None = None, *, metrics: Metrics | None = None
) -> Provider:
    """The provider the engine uses: the chosen provider and `[llm] fallback_provider` (in order),
    each behind its circuit breaker and client-side rate limit, with the response cache in front.
    `metrics` defaults to the process-wide registry."""
    from reasonkit.observability.metrics import default_metrics
    from reasonkit.providers.cache import ResponseCache
    from reasonkit.providers.fallback import FallbackProvider, scrubber

    metrics = metrics or default_metrics()
    primary = choose_provider_name(settings, name)
    names = [primary] + [n for n in dict.fromkeys(settings.llm.fallback_provider) if n != primary]
    built = [
        build_one(settings, n, model if i == 0 else None, fallback=i > 0, metrics=metrics)
        for i, n in enumerate(names)
    ]
    cache = ResponseCache.from_settings(settings, metrics)
    scrub = scrubber(_secrets(settings))
    legs = [
        _leg(settings, n, p, metrics, cache=cache, scrub=scrub, can_fall_back=i < len(names) - 1)
        for i, (n, p) in enumerate(zip(names, built, strict=True))
    ]
    return FallbackProvider(legs, metrics, scrub)


def limited(provider: Provider, calls: anyio.CapacityLimiter, metrics: Metrics | None = None) -> Provider:
    """`provider` behind the process-wide provider-call cap (the server's, for its lifetime)."""
    from reasonkit.providers.concurrency import LimitedProvider

    return LimitedProvider(provider, calls, metrics)


def for_run(provider: Provider, settings: Settings, metrics: Metrics) -> Provider:
    """`provider` as a run uses it: metered, then traced (when tracing is on), inside redaction (when
    `[privacy] redact_provider_input`), so a span that captures content sees what was sent. Sets
    tracing up (or changes it after a reload) on first use."""
    from reasonkit.observability import tracing
    from reasonkit.providers.metering import metered
    from reasonkit.providers.tracing import RedactingProvider, TracedProvider

    provider = metered(provider, metrics)
    tracing.setup_tracing(settings)
    if tracing.tracer() is not None and not isinstance(provider, TracedProvider):
        provider = TracedProvider(provider)
    if settings.privacy.redact_provider_input and not isinstance(provider, RedactingProvider):
        provider = RedactingProvider(provider)
    return provider


def retry_hook(metrics: Metrics, provider: str) -> Callable[[ProviderError, int, float], None]:
    """`on_retry` of the SDK providers: counts retries by error type and logs them."""

    def hook(exc: ProviderError, attempt: int, delay: float) -> None:
        metrics.provider_retries.labels(provider=provider, type=exc.kind).inc()
        logger.debug(
            "provider {}: attempt {} failed ({}), retrying in {:.2f}s", provider, attempt, exc.kind, delay
        )

    return hook
