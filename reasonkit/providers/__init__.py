"""LLM providers: one async interface (base.Provider) over the official SDKs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasonkit.config import Settings
from reasonkit.providers.base import (
    LLMRequest,
    LLMResponse,
    NoProviderConfigured,
    PriceTable,
    Provider,
    ProviderError,
    Usage,
)

if TYPE_CHECKING:
    from reasonkit.observability.metrics import Metrics

__all__ = [
    "LLMRequest",
    "LLMResponse",
    "NoProviderConfigured",
    "PriceTable",
    "Provider",
    "ProviderError",
    "Usage",
    "build_provider",
    "choose_provider_name",
    "output_mode_setting",
]

DEFAULT_MODELS = {
    "anthropic": "claude-sonnet-4-6",
    "openai": "gpt-4.1-mini",
    "openrouter": "anthropic/claude-sonnet-4.6",
}
OPENROUTER_BASE = "https://openrouter.ai/api/v1"

SETUP_HELP = """no LLM provider is configured. Set one of:
  ANTHROPIC_API_KEY=...            (Anthropic; ANTHROPIC_BASE_URL for a compatible server)
  OPENAI_API_KEY=...               (OpenAI)
  OPENAI_BASE_URL=http://host/v1   (any OpenAI-compatible server: Ollama, vLLM, llama.cpp; key optional)
  OPENROUTER_API_KEY=...           (OpenRouter)
or in the config file:
  [llm]
  default_provider = "openai"
  [llm.providers.openai]
  api_base = "http://127.0.0.1:11434/v1"
(LLM_DEFAULT_PROVIDER / LLM_DEFAULT_MODEL choose among several.) See docs/configuration.md.
Or run a small model in process, with no server and no key:
  pip install 'reasonkit[local]'     (the `local` provider; used when nothing else is configured,
                                    unless LOCAL_MODEL_AUTO=false)"""


def _configured(settings: Settings, name: str) -> bool:
    p = settings.llm.providers.get(name)
    if p is None:
        return False
    return bool((p.api_key and p.api_key.get_secret_value()) or p.api_base)


def _local_available(settings: Settings) -> bool:
    """Whether the in-process `local` provider can run (llama-cpp-python and a model file)."""
    try:
        from reasonkit.providers.local import local_available
    except ImportError:
        return False
    return bool(local_available(settings))


def choose_provider_name(settings: Settings, explicit: str | None = None) -> str:
    """Explicit flag > LLM_DEFAULT_PROVIDER / [llm] default_provider > the first configured of
    anthropic, openai, openrouter, then any other [llm.providers.*] entry > `local` when it can run
    (zero configuration: `pip install 'reasonkit[local]'`)."""
    name = explicit or settings.llm.default_provider
    if name:
        return name
    for cand in ("anthropic", "openai", "openrouter", *sorted(settings.llm.providers)):
        if _configured(settings, cand):
            return cand
    if settings.llm.local.auto and _local_available(settings):
        return "local"
    raise NoProviderConfigured(SETUP_HELP)


def output_mode_setting(settings: Settings, name: str) -> str:
    """The `output_mode` for provider `name`: `[llm.providers.<name>] output_mode`, else `[llm]
    output_mode` ("auto" by default). The deprecated `structured_output` is already mapped onto
    `output_mode` by the settings model."""
    ps = settings.llm.providers.get(name)
    mode = ps.output_mode if ps is not None else None
    return mode or settings.llm.output_mode or "auto"


def _build_one(
    settings: Settings, name: str, model: str | None, *, fallback: bool, metrics: Metrics
) -> Provider:
    from reasonkit.providers.resilience import retry_hook

    ps = settings.llm.providers.get(name)
    if name == "local" and (ps is None or not ps.kind):
        try:
            from reasonkit.providers.local import build_local_provider
        except ImportError:
            raise NoProviderConfigured(
                "the local provider is not part of this installation: pip install 'reasonkit[local]'"
            ) from None
        return build_local_provider(settings, name=name)
    kind = (ps.kind if ps and ps.kind else None) or (
        "anthropic" if name == "anthropic" else "openai" if name in ("openai", "openrouter") else None
    )
    role = f"fallback provider '{name}' (from [llm] fallback_provider)" if fallback else f"provider '{name}'"
    if kind is None:
        known = ", ".join(sorted({"anthropic", "openai", "openrouter", "local", *settings.llm.providers}))
        raise NoProviderConfigured(
            f'unknown {role} (known: {known}). Add [llm.providers.{name}] with kind = "openai" or '
            f'"anthropic" and api_base.'
        )
    if ps is None or not _configured(settings, name):
        what = "is selected but" if not fallback else "is listed but"
        raise NoProviderConfigured(f"{role} {what} has no API key or base URL.\n" + SETUP_HELP)
    # LLM_DEFAULT_MODEL names a model of the default provider; a fallback uses its own model.
    default_model = None if fallback else settings.llm.default_model
    chosen_model = model or (ps.model if ps.model else None) or default_model or DEFAULT_MODELS.get(name)
    if not chosen_model:
        hint = "" if fallback else "LLM_DEFAULT_MODEL or "
        raise NoProviderConfigured(f"no model set for {role}: set {hint}[llm.providers.{name}] model")
    base = ps.api_base or (OPENROUTER_BASE if name == "openrouter" else None)
    key = ps.api_key.get_secret_value() if ps.api_key else None
    prices = PriceTable.load(settings.llm.prices)
    if kind == "anthropic":
        from reasonkit.providers.anthropic import AnthropicProvider as cls
    else:
        from reasonkit.providers.openai_compat import OpenAIProvider as cls  # type: ignore[assignment]
    return cls(
        name,
        chosen_model,
        prices,
        api_key=key,
        base_url=base,
        timeout=ps.timeout_secs,
        max_retries=ps.max_retries,
        output_mode=output_mode_setting(settings, name),
        retry_base_delay=ps.retry_base_delay_secs,
        retry_max_delay=ps.retry_max_delay_secs,
        on_retry=retry_hook(metrics, name),
    )


def build_provider(
    settings: Settings, name: str | None = None, model: str | None = None, *, metrics: Metrics | None = None
) -> Provider:
    """The provider the engine uses: the chosen provider and `[llm] fallback_provider` (in order),
    each behind its circuit breaker and client-side rate limit, with the response cache in front
    (see providers/resilience.py). `metrics` defaults to the process-wide registry."""
    from reasonkit.observability.metrics import default_metrics
    from reasonkit.providers.cache import ResponseCache
    from reasonkit.providers.resilience import (
        CircuitBreaker,
        ClientRateLimiter,
        Leg,
        ResilientProvider,
        breaker_hook,
    )

    metrics = metrics or default_metrics()
    primary = choose_provider_name(settings, name)
    names = [primary] + [n for n in dict.fromkeys(settings.llm.fallback_provider) if n != primary]
    from reasonkit.config import ProviderSettings

    rl = settings.llm.rate_limiting
    legs: list[Leg] = []
    for i, n in enumerate(names):
        prov = _build_one(settings, n, model if i == 0 else None, fallback=i > 0, metrics=metrics)
        ps = settings.llm.providers.get(n) or ProviderSettings()  # `local` may have no section
        breaker = (
            CircuitBreaker(n, ps.breaker_threshold, ps.breaker_cooldown_secs, on_change=breaker_hook(metrics))
            if ps.breaker_threshold > 0
            else None
        )
        rpm = ps.requests_per_minute or rl.requests_per_minute
        limiter = ClientRateLimiter(n, rpm, rl.strategy, rl.queue_size, rl.burst, metrics) if rpm else None
        legs.append(Leg(prov, breaker, limiter))
    secrets: list[str | None] = [
        p.api_key.get_secret_value() if p.api_key else None for p in settings.llm.providers.values()
    ]
    if settings.database.redis.url:
        secrets.append(settings.database.redis.url.get_secret_value())
    cache = ResponseCache.from_settings(settings, metrics)
    return ResilientProvider(legs, cache=cache, metrics=metrics, secrets=secrets)
