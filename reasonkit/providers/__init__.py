"""LLM providers: one async interface (base.Provider) over the official SDKs."""

from __future__ import annotations

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
(LLM_DEFAULT_PROVIDER / LLM_DEFAULT_MODEL choose among several.) See docs/configuration.md."""


def _configured(settings: Settings, name: str) -> bool:
    p = settings.llm.providers.get(name)
    if p is None:
        return False
    return bool((p.api_key and p.api_key.get_secret_value()) or p.api_base)


def choose_provider_name(settings: Settings, explicit: str | None = None) -> str:
    """Explicit flag > LLM_DEFAULT_PROVIDER / [llm] default_provider > the first configured of
    anthropic, openai, openrouter, then any other [llm.providers.*] entry."""
    name = explicit or settings.llm.default_provider
    if name:
        return name
    for cand in ("anthropic", "openai", "openrouter", *sorted(settings.llm.providers)):
        if _configured(settings, cand):
            return cand
    raise NoProviderConfigured(SETUP_HELP)


def build_provider(settings: Settings, name: str | None = None, model: str | None = None) -> Provider:
    from reasonkit.providers.sdk import AnthropicProvider, OpenAIProvider

    name = choose_provider_name(settings, name)
    ps = settings.llm.providers.get(name)
    kind = (ps.kind if ps and ps.kind else None) or ("anthropic" if name == "anthropic" else "openai" if name in ("openai", "openrouter") else None)
    if kind is None:
        known = ", ".join(sorted({"anthropic", "openai", "openrouter", *settings.llm.providers}))
        raise NoProviderConfigured(
            f"unknown provider '{name}' (known: {known}). Add [llm.providers.{name}] with kind = \"openai\" or \"anthropic\" and api_base."
        )
    if ps is None or not _configured(settings, name):
        raise NoProviderConfigured(f"provider '{name}' is selected but has no API key or base URL.\n" + SETUP_HELP)
    chosen_model = model or (ps.model if ps.model else None) or settings.llm.default_model or DEFAULT_MODELS.get(name)
    if not chosen_model:
        raise NoProviderConfigured(f"no model set for provider '{name}': set LLM_DEFAULT_MODEL or [llm.providers.{name}] model")
    base = ps.api_base or (OPENROUTER_BASE if name == "openrouter" else None)
    key = ps.api_key.get_secret_value() if ps.api_key else None
    prices = PriceTable.load(settings.llm.prices)
    cls = AnthropicProvider if kind == "anthropic" else OpenAIProvider
    return cls(
        name,
        chosen_model,
        prices,
        api_key=key,
        base_url=base,
        timeout=ps.timeout_secs,
        max_retries=ps.max_retries,
        structured_output=ps.structured_output,
    )
