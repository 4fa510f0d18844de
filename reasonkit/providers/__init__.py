"""LLM providers: one async interface (base.Provider) over the official SDKs and the embedded model.

Which provider a call uses is decided here (`choose_provider_name`); what each kind is comes from the
kind registry (reasonkit/provider_kinds.py); the chain of wrappers around it is built in one place,
providers/stack.py (`build_provider`, `for_run`, `limited`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from reasonkit import provider_kinds
from reasonkit.errors import NoProviderConfigured
from reasonkit.providers.base import LLMRequest, LLMResponse, PriceTable, Provider, Usage

if TYPE_CHECKING:
    from reasonkit.config import Settings

__all__ = [
    "SETUP_HELP",
    "LLMRequest",
    "LLMResponse",
    "PriceTable",
    "Provider",
    "Usage",
    "choose_provider_name",
    "import_named",
    "is_configured",
    "kind_available",
    "output_mode_setting",
]


# After the kinds' own lines (from the registry) in the "no provider configured" help.
_SETUP_TAIL = """or in the config file:
  [llm]
  default_provider = "openai"
  [llm.providers.openai]
  api_base = "http://127.0.0.1:11434/v1"
(LLM_DEFAULT_PROVIDER / LLM_DEFAULT_MODEL choose among several.) See docs/configuration.md.
Or run a small model in process, with no server and no key:
  pip install 'reasonkit[local]'     (the `local` provider; used when nothing else is configured,
                                    unless LOCAL_MODEL_AUTO=false)"""


def _setup_help() -> str:
    lines = [f"  {what:<32} ({why})" for kind in provider_kinds.KINDS.values() for what, why in kind.setup]
    return "\n".join(["no LLM provider is configured. Set one of:", *lines, _SETUP_TAIL])


SETUP_HELP = _setup_help()


def is_configured(settings: Settings, name: str) -> bool:
    """`[llm.providers.<name>]` has an API key or a base URL."""
    p = settings.llm.providers.get(name)
    if p is None:
        return False
    return bool((p.api_key and p.api_key.get_secret_value()) or p.api_base)


def import_named(path: str) -> Any:
    """What a registry row names as "module:attribute", imported now (the SDKs load late)."""
    module, attribute = path.split(":")
    return getattr(import_module(module), attribute)


def kind_available(kind: provider_kinds.ProviderKind, settings: Settings | None = None) -> bool:
    """Whether an in-process kind can run here (its extra installed, its model there)."""
    if kind.available is None:
        return False
    try:
        available = import_named(kind.available)
    except ImportError:
        return False
    return bool(available(settings))


def choose_provider_name(settings: Settings, explicit: str | None = None) -> str:
    """Explicit flag > LLM_DEFAULT_PROVIDER / [llm] default_provider > the first configured of the
    kinds (registry order), then any other [llm.providers.*] entry > an in-process kind when it can
    run (zero configuration: `pip install 'reasonkit[local]'`; `[llm.local] auto`)."""
    name = explicit or settings.llm.default_provider
    if name:
        return name
    for cand in (*provider_kinds.kind_names(in_process=False), *sorted(settings.llm.providers)):
        if is_configured(settings, cand):
            return cand
    if settings.llm.local.auto:
        for kind in provider_kinds.KINDS.values():
            if kind.in_process and kind_available(kind, settings):
                return kind.name
    raise NoProviderConfigured(SETUP_HELP)


def output_mode_setting(settings: Settings, name: str) -> str:
    """The `output_mode` for provider `name`: `[llm.providers.<name>] output_mode`, else `[llm]
    output_mode` ("auto" by default). The deprecated `structured_output` is already mapped onto
    `output_mode` by the settings model."""
    ps = settings.llm.providers.get(name)
    mode = ps.output_mode if ps is not None else None
    return mode or settings.llm.output_mode or "auto"
