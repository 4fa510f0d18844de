"""What a run's provider changes before it starts: the notices a shell shows (a fall-back to the
embedded model, a cost budget that cannot be enforced) and the small-model caps for the embedded
model. Functions of the settings and the provider, apart from the run service that uses them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reasonkit import provider_kinds
from reasonkit.config import Settings
from reasonkit.errors import NoProviderConfigured
from reasonkit.providers.base import Provider

if TYPE_CHECKING:  # the engine is imported by the first run, not at server start (docs/benchmarks.md)
    from reasonkit.engine import Budget, StepCaps

__all__ = ["LOCAL_PROVIDER", "budget_notice", "local_caps", "provider_notice", "startup_notice"]

LOCAL_PROVIDER = "local"


def budget_notice(provider: Provider, budget: Budget) -> str | None:
    """Said before a run starts: a cost budget that cannot be enforced (unknown prices)."""
    from reasonkit.engine.budget import unenforced_budget

    return unenforced_budget(budget.usd, provider.unpriced_models())


def local_caps(settings: Settings, provider: Provider) -> StepCaps | None:
    """Small-model caps for runs on the embedded local model (`[llm.local]` max_items, max_tokens,
    samples; 0 turns one off). Other providers run protocols as written."""
    if provider.name != LOCAL_PROVIDER:
        return None
    from reasonkit.engine import StepCaps

    local = settings.llm.local
    caps = StepCaps(
        max_items=local.max_items or None,
        max_tokens=local.max_tokens or None,
        samples=local.samples or None,
    )
    return caps if (caps.max_items or caps.max_tokens or caps.samples) else None


def provider_notice(settings: Settings, provider: Provider) -> str | None:
    """The one-time notice when a run falls back to the embedded local model (not when the user
    chose it)."""
    if settings.llm.default_provider == provider.name:
        return None
    return provider_kinds.notice(provider.name, provider.model)  # the kind registry's notice


def startup_notice(settings: Settings) -> str | None:
    """The same notice, known before any provider is built (the server says it at start-up)."""
    from reasonkit.providers import choose_provider_name

    if settings.llm.default_provider == LOCAL_PROVIDER:
        return None  # chosen, so no surprise to announce
    try:
        chosen = choose_provider_name(settings)
    except NoProviderConfigured:
        return None
    path, default = settings.llm.local.model_path, provider_kinds.KINDS[LOCAL_PROVIDER].default_model
    model = Path(path).stem if path else default
    return None if chosen != LOCAL_PROVIDER else provider_kinds.notice(LOCAL_PROVIDER, model or "")
