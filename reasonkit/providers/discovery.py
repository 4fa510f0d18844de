"""Which model to use on an OpenAI-compatible server nobody named a model for.

Ollama, llama.cpp's server, LM Studio and vLLM speak the `openai` wire format, but none of them has
OpenAI's default model (`gpt-4.1-mini`): with only `OPENAI_BASE_URL` set, every call used to fail
with "model not found". Such a server lists what it has at `GET {base}/models`, so when no model is
configured we ask it: one model is the one to use (so is the kind's default model when it is listed:
a LiteLLM or other proxy in front of OpenAI); with several, or none, building the provider stops
with an error that says what exists and how to pick. A server that does not answer is said in a
warning and the kind's default kept: a ReasonKit server started before Ollama must still start (and
fall back to another provider), and each call then fails with the connection error, which names the
URL. OpenAI itself is never asked (its list has dozens of models; the kind's default stays).

Discovery runs while the provider chain is built, which is synchronous and may happen inside a
running event loop (the server's reload), so the listing runs on a throwaway client in a worker
thread with its own loop, bounded by `LIST_TIMEOUT`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import anyio
from loguru import logger

from reasonkit import provider_kinds
from reasonkit.errors import NoProviderConfigured, ProviderError
from reasonkit.providers.base import Provider

__all__ = ["LIST_TIMEOUT", "discover_model", "needs_discovery"]

LIST_TIMEOUT = 5.0  # seconds: a local server answers /models at once; a dead one must not hang start-up
_SHOWN = 20  # models named in the error at most (a vLLM or LM Studio host can list many)


def needs_discovery(kind: provider_kinds.ProviderKind, base_url: str | None) -> bool:
    """The `openai` wire format pointed at a server other than OpenAI's own."""
    if kind.name != "openai" or not base_url or not kind.endpoint:
        return False
    return urlsplit(base_url).hostname != urlsplit(kind.endpoint).hostname


def discover_model(
    name: str, base_url: str, make: Callable[[str], Provider], default: str | None
) -> str | None:
    """The one model the server at `base_url` lists (or `default`, the kind's default model, when
    it is among several: a proxy in front of OpenAI; or when the server does not answer);
    `make(model)` builds a provider to ask with. Raises `NoProviderConfigured` saying what the
    server has and how to choose."""
    probe = make("")

    async def ask() -> list[str] | None:
        try:
            return await probe.list_models(request_timeout=LIST_TIMEOUT)
        finally:
            await probe.aclose()

    pick = f"LLM_DEFAULT_MODEL=<model> or [llm.providers.{name}] model"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rk-model-list") as pool:
        try:
            models = pool.submit(anyio.run, ask).result()
        except ProviderError as exc:
            logger.warning(
                "provider '{}' has no model set, and ReasonKit could not list the models of the "
                "server at {} ({}): is it running? Using '{}' until {} names one.",
                name,
                base_url,
                exc,
                default,
                pick,
            )
            return default
    models = sorted(dict.fromkeys(models or []))
    if len(models) == 1:
        return models[0]
    if default in models:
        return default
    if not models:
        raise NoProviderConfigured(
            f"provider '{name}' has no model set, and the server at {base_url} lists no models "
            f"(Ollama: ollama pull <model>; llama.cpp: start it with -m FILE.gguf). Then set {pick} "
            "if it lists more than one."
        )
    shown = ", ".join(models[:_SHOWN]) + (
        f" (and {len(models) - _SHOWN} more)" if len(models) > _SHOWN else ""
    )
    raise NoProviderConfigured(
        f"provider '{name}' has no model set, and the server at {base_url} has {len(models)}: "
        f"{shown}. Pick one: LLM_DEFAULT_MODEL={models[0]} (or --model, or [llm.providers.{name}] "
        f'model = "{models[0]}" in the config file).'
    )
