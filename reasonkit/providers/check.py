"""`rk providers check`: one tiny probe per configured provider (the CLI only prints the results).

For each provider: is the server reachable, does it know the model (GET {base}/models, where the
server has it), which output mode works (a real completion with a tiny schema, negotiated as in
negotiation.py, so the result is also remembered for this process), and how long the completion
took. A provider failure never raises: it is reported in its `ProbeResult`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from reasonkit.errors import ProviderError, ReasonKitError
from reasonkit.providers.base import LLMRequest, Provider

if TYPE_CHECKING:
    from reasonkit.config import Settings

__all__ = ["PROBE_PROMPT", "PROBE_SCHEMA", "ProbeResult", "check_providers", "probe_names", "probe_provider"]

PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ok"],
    "properties": {"ok": {"type": "boolean", "description": "Always true."}},
}
PROBE_PROMPT = 'This is a connectivity check. Reply with {"ok": true}.'


@dataclass
class ProbeResult:
    provider: str
    model: str | None = None
    base_url: str | None = None
    reachable: bool = False
    # None: the server has no model listing (or the provider runs in process)
    model_found: bool | None = None
    output_mode: str | None = None  # the mode the probe's completion was answered in
    latency_ms: float | None = None  # of the probe completion
    ok: bool = False
    error: str | None = None
    error_kind: str | None = None
    models: list[str] = field(default_factory=list)  # what the server lists (first 50)
    output_modes: list[dict[str, Any]] = field(default_factory=list)  # provider.output_modes()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_names(settings: Settings) -> list[str]:
    """The providers to probe: the default one, the fallback chain, then every other configured
    `[llm.providers.*]` entry. Raises NoProviderConfigured (with the setup help) when there is none."""
    from reasonkit.providers import choose_provider_name, is_configured

    names = [choose_provider_name(settings), *settings.llm.fallback_provider]
    names += [n for n in sorted(settings.llm.providers) if is_configured(settings, n)]
    return list(dict.fromkeys(names))


async def probe_provider(
    settings: Settings, name: str, deadline_secs: float = 30.0, *, primary: bool = True
) -> ProbeResult:
    """Probe one provider; never raises for a provider failure. `primary`: the default provider
    (LLM_DEFAULT_MODEL applies to it only)."""
    from reasonkit.observability.metrics import Metrics
    from reasonkit.providers.stack import build_one

    result = ProbeResult(provider=name)
    try:
        provider: Provider = build_one(settings, name, None, fallback=not primary, metrics=Metrics())
    except ReasonKitError as exc:
        result.error, result.error_kind = str(exc), "config"
        return result
    result.model = provider.model
    result.base_url = provider.base_url or None
    provider.max_retries = 0  # a probe reports what it sees; it does not wait out a flaky server
    try:
        with anyio.move_on_after(deadline_secs) as scope:
            await _probe(provider, result)
        if scope.cancelled_caught:
            result.error, result.error_kind = f"no answer within {deadline_secs:g}s", "timeout"
    except ReasonKitError as exc:  # pragma: no cover - _probe reports ProviderErrors itself
        result.error, result.error_kind = str(exc), "other"
    finally:
        result.output_modes = provider.output_modes()
        try:
            await provider.aclose()
        except Exception:  # noqa: BLE001 - closing a half-dead client must not hide the result
            pass
    result.ok = result.error is None and result.output_mode is not None
    return result


async def _probe(provider: Provider, result: ProbeResult) -> None:
    try:
        models = await provider.list_models(request_timeout=5.0)
    except ProviderError as exc:
        if exc.kind in ("connection", "timeout"):
            result.error, result.error_kind = exc.message, exc.kind
            return  # nothing answers: the completion would only fail the same way
        result.reachable = True  # it answered, just without a listing (404, auth, ...)
        if exc.kind == "auth":
            result.error, result.error_kind = exc.message, exc.kind
            return
    else:
        if models is not None:  # None: this provider has nothing to list (in process)
            result.reachable = True
            result.models = models[:50]
            result.model_found = result.model in models if models else None
    request = LLMRequest(
        messages=[{"role": "user", "content": PROBE_PROMPT}],
        schema=PROBE_SCHEMA,
        schema_name="probe",
        temperature=0.0,
        max_tokens=64,
    )
    started = time.perf_counter()
    try:
        resp = await provider.complete(request)
    except ProviderError as exc:
        result.error, result.error_kind = exc.message, exc.kind
        if exc.kind not in ("connection", "timeout"):
            result.reachable = True
        if exc.kind == "not_found":
            result.model_found = False
        return
    result.reachable = True
    result.latency_ms = resp.latency_ms or (time.perf_counter() - started) * 1000
    result.output_mode = resp.output_mode or resp.structured
    if result.model_found is False:
        # It answered for this model although its listing lacks it (llama-cpp-python serves its one
        # loaded model under any name): usable, so found - the listing is in `models`.
        result.model_found = True


async def check_providers(settings: Settings, deadline_secs: float = 30.0) -> list[ProbeResult]:
    """Probe every configured provider concurrently (see `probe_names`), in that order. Raises
    NoProviderConfigured only when nothing at all is configured; provider failures are reported."""
    names = probe_names(settings)
    primary = names[0]
    results: dict[str, ProbeResult] = {}

    async def one(name: str) -> None:
        results[name] = await probe_provider(settings, name, deadline_secs, primary=name == primary)

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(one, name)
    return [results[n] for n in names]
