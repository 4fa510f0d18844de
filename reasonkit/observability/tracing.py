"""OpenTelemetry tracing (opt-in, `[tracing] enabled`): the SDK with an OTLP/HTTP exporter, and the
spans of a run.

    setup_tracing(settings)                 once per process (and after a reload); a no-op when off
    spans = start_run_spans(method, result) the tool call / `rk think` span, made current
    spans.observe(event)                    entry and step spans from the engine's events
    end_run_spans(result)                   ends them, with the run's status and token totals
    llm_span(...)                           one provider call (reasonkit/providers/tracing.py)

Span tree of a run: `execute_tool <tool>` (or `rk think <name>`) -> `entry <id>` -> `step <entry>.<step>`
-> `chat <model>`. Parentage follows the OpenTelemetry context, a contextvar, which anyio task groups
copy into each child task: an entry span made current in the entry's task is the parent of the step
tasks it starts, and a step span the parent of the provider calls in that step (samples and for_each
items included).

Attributes follow the GenAI semantic conventions (`gen_ai.operation.name`, `gen_ai.system`,
`gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`,
`gen_ai.usage.output_tokens`) plus `reasonkit.run_id` on every span. Prompt and reply text are
recorded only with `[tracing] capture_content = true`; with `[privacy] redact_pii` that text (the
prompt, the model's reply, error descriptions) is redacted like stored runs and logs, since a
trace backend is one more place personal data would otherwise end up.

The SDK is an optional dependency (`pip install 'reasonkit[tracing]'`): enabled without it, one
warning says what to install and tracing stays off. Layer 1: imports only the standard library at
module level (and `opentelemetry` lazily).
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loguru import logger

from reasonkit.observability.redaction import redact_pii

if TYPE_CHECKING:
    from reasonkit.config import Settings

__all__ = [
    "DEFAULT_ENDPOINT",
    "GRPC_PORT",
    "INSTALL_HINT",
    "RunSpans",
    "capture_content",
    "current_ids",
    "current_run_id",
    "end_llm_span",
    "end_run_spans",
    "flush",
    "llm_span",
    "setup_tracing",
    "shutdown_tracing",
    "start_run_spans",
    "tracer",
    "traces_endpoint",
]

INSTALL_HINT = "pip install 'reasonkit[tracing]' (opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http)"
DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
GRPC_PORT = 4317

#: The run id of the run whose span is current (for provider-call spans, which do not see the run).
current_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("reasonkit_run_id", default=None)


@dataclass
class _State:
    key: tuple[Any, ...] | None = None  # the settings the provider was built from
    provider: Any = None  # opentelemetry.sdk.trace.TracerProvider
    tracer: Any = None
    capture_content: bool = False
    redact: bool = False  # `[privacy] redact_pii`: span text goes through `redact_pii`
    warned: bool = False


_state = _State()


def traces_endpoint(configured: str | None) -> str:
    """The OTLP/HTTP traces URL: `[tracing] endpoint` (`OTLP_ENDPOINT`), else
    `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else
    localhost:4318. A base URL without a path gets `/v1/traces`."""
    url = configured or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if url:
        parts = urlsplit(url)
        return url if parts.path not in ("", "/") else url.rstrip("/") + "/v1/traces"
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return base.rstrip("/") + "/v1/traces" if base else DEFAULT_ENDPOINT


def setup_tracing(settings: Settings) -> bool:
    """Install (or replace, when the settings changed) the tracer provider; True when tracing is on.
    Spans are batched and exported in a background thread; the provider flushes at process exit."""
    cfg = settings.tracing
    # Called for every run: the settings first, so tracing off reads no environment variable.
    off = not (cfg.enabled or settings.features.tracing)
    if off or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":  # the SDK's own switch
        shutdown_tracing()
        return False
    _state.redact = settings.privacy.redact_pii
    endpoint = traces_endpoint(cfg.endpoint)
    key = (endpoint, cfg.capture_content, os.environ.get("OTEL_SERVICE_NAME"))
    if _state.key == key and _state.tracer is not None:
        return True
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        if not _state.warned:
            _state.warned = True
            logger.warning(
                "tracing is enabled but OpenTelemetry is not installed ({}): {}", exc, INSTALL_HINT
            )
        return False
    if urlsplit(endpoint).port == GRPC_PORT:
        logger.warning(
            "tracing endpoint {} uses port 4317, the OTLP/gRPC port; ReasonKit exports OTLP over HTTP "
            "(protobuf), usually port 4318",
            endpoint,
        )
    shutdown_tracing()
    from reasonkit import __version__

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "reasonkit", "service.version": __version__}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    _state.key, _state.provider = key, provider
    _state.tracer = provider.get_tracer("reasonkit", __version__)
    _state.capture_content = cfg.capture_content
    logger.info("tracing on: OTLP/HTTP export to {}", endpoint)
    return True


def shutdown_tracing() -> None:
    """Flush and stop the exporter (a no-op when tracing is off)."""
    provider = _state.provider
    _state.key = _state.provider = _state.tracer = None
    if provider is not None:
        provider.shutdown()


def flush(timeout_ms: int = 5000) -> bool:
    """Export the spans still buffered; True when done (or nothing to do)."""
    return bool(_state.provider.force_flush(timeout_ms)) if _state.provider is not None else True


def tracer() -> Any:
    """The tracer, or None when tracing is off."""
    return _state.tracer


def capture_content() -> bool:
    return _state.tracer is not None and _state.capture_content


def current_ids() -> tuple[str, str] | None:
    """(trace id as 32 hex digits, span id as 16) of the current span, or None (no span, or tracing
    off): what the log records carry."""
    if _state.tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _text(text: str) -> str:
    """Text bound for a span, redacted when `[privacy] redact_pii` is on."""
    return redact_pii(text) if _state.redact else text


def _error(span: Any, description: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, _text(description)[:200]))


class RunSpans:
    """The spans of one run: opened by `start_run_spans`, fed the engine's events by the run service."""

    def __init__(self, tracer: Any, run_id: str):
        self.tracer = tracer
        self.run_id = run_id
        self.open: dict[tuple[str, ...], tuple[Any, Any]] = {}  # key -> (span, context token)
        self.run_span: Any = None
        self.context_token: Any = None
        self.run_token: contextvars.Token[str | None] | None = None

    def observe(self, event: Any) -> None:
        """Open or close an entry or step span for an engine event (the engine's `Event`). Called
        in the task that runs the entry or step, so a span made current here is inherited by the tasks
        it starts."""
        if self.tracer is None:
            return
        kind, entry, step = event.type, event.entry or "", event.step or ""
        if kind == "entry_started":
            attrs = {"reasonkit.entry": entry, "reasonkit.protocol_name": event.message}
            self._start(("entry", entry), f"entry {entry}", attrs)
        elif kind == "entry_skipped":
            span = self.tracer.start_span(
                f"entry {entry}", attributes=self._attrs({"reasonkit.entry": entry})
            )
            span.set_attribute("reasonkit.status", "skipped")
            span.set_attribute("reasonkit.skip_reason", event.message[:200])
            span.end()
        elif kind == "entry_finished":
            self._end(("entry", entry), event)
        elif kind == "step_started":
            attrs = {"reasonkit.entry": entry, "reasonkit.step": step}
            self._start(("step", entry, step), f"step {entry}.{step}", attrs)
        elif kind == "step_finished" and event.item is None:
            self._end(("step", entry, step), event)

    def _attrs(self, extra: dict[str, Any]) -> dict[str, Any]:
        return {"reasonkit.run_id": self.run_id, **extra}

    def _start(self, key: tuple[str, ...], name: str, attrs: dict[str, Any]) -> None:
        from opentelemetry import context, trace

        span = self.tracer.start_span(name, attributes=self._attrs(attrs))
        token = context.attach(trace.set_span_in_context(span))
        self.open[key] = (span, token)

    def _end(self, key: tuple[str, ...], event: Any) -> None:
        from opentelemetry import context

        found = self.open.pop(key, None)
        if found is None:
            return
        span, token = found
        if event.status:
            span.set_attribute("reasonkit.status", event.status)
            if event.status == "failed":
                _error(span, f"{key[-1]} failed")
        if event.confidence is not None:
            span.set_attribute("reasonkit.confidence", float(event.confidence))
        span.end()
        context.detach(token)  # the same task that attached it (the engine emits both there)

    def close(self) -> None:
        """End the spans the run left open (cancelled or cut off by the budget). Their contexts belong
        to tasks that have ended, so they are not detached."""
        for span, _token in self.open.values():
            span.set_attribute("reasonkit.status", "cancelled")
            span.end()
        self.open.clear()


_runs: dict[str, RunSpans] = {}  # open run spans by run id (start_run_spans -> end_run_spans)


def start_run_spans(method: str, result: Any) -> RunSpans:
    """Open the span of one tool call or `rk think` run (`result`: its `RunResult`) and make it current
    in the calling task until `end_run_spans`; feed it the engine's events with `observe`. Without
    tracing a no-op `RunSpans` (the run id is still made current for provider spans)."""
    active = _state.tracer
    spans = RunSpans(active, result.run_id)
    spans.run_token = current_run_id.set(result.run_id)
    _runs[result.run_id] = spans
    if active is None:
        return spans
    from opentelemetry import context, trace

    cli = method.startswith("rk ")
    attrs = {
        "reasonkit.run_id": result.run_id,
        "reasonkit.kind": result.kind,
        "reasonkit.name": result.name,
        "gen_ai.operation.name": "invoke_agent" if cli else "execute_tool",
    }
    if not cli:
        attrs["gen_ai.tool.name"] = method
    name = f"{method} {result.name}" if cli else f"execute_tool {method}"
    spans.run_span = active.start_span(name, attributes=attrs)
    spans.context_token = context.attach(trace.set_span_in_context(spans.run_span))
    return spans


def end_run_spans(result: Any) -> None:
    """End the run's span (and any entry or step span left open), with the run's status, confidence
    and token totals; restores the context `start_run_spans` changed. Call it in the same task."""
    spans = _runs.pop(result.run_id, None)
    if spans is None:
        return
    span = spans.run_span
    if span is not None:
        from opentelemetry import context

        spans.close()
        span.set_attribute("reasonkit.status", result.status)
        span.set_attribute("reasonkit.confidence", float(result.confidence))
        span.set_attribute("gen_ai.usage.input_tokens", int(result.tokens.input))
        span.set_attribute("gen_ai.usage.output_tokens", int(result.tokens.output))
        if result.provider:
            span.set_attribute("gen_ai.provider.name", result.provider)
        if result.status == "failed":
            _error(span, "; ".join(result.errors[:3]) or result.stop_reason or "the run failed")
        span.end()
        context.detach(spans.context_token)
    if spans.run_token is not None:
        current_run_id.reset(spans.run_token)


@contextmanager
def llm_span(provider: str, model: str, request: Any) -> Iterator[Any]:
    """The span of one provider call (a CLIENT span `chat <model>`), current for the body; None when
    tracing is off. `request` is the `LLMRequest`; its text is recorded only with capture_content."""
    active = _state.tracer
    if active is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": provider,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": int(request.max_tokens),
    }
    if request.temperature is not None:
        attrs["gen_ai.request.temperature"] = float(request.temperature)
    run_id = current_run_id.get()
    if run_id:
        attrs["reasonkit.run_id"] = run_id
    if capture_content():
        import json

        if request.system:
            system = [{"type": "text", "content": _text(request.system)}]
            attrs["gen_ai.system_instructions"] = json.dumps(system)
        messages = [{**m, "content": _text(m["content"])} if "content" in m else m for m in request.messages]
        attrs["gen_ai.input.messages"] = json.dumps(messages, ensure_ascii=False)
    with active.start_as_current_span(
        f"chat {model}", kind=SpanKind.CLIENT, attributes=attrs, record_exception=False
    ) as span:
        yield span


def end_llm_span(span: Any, response: Any = None, error: Any = None) -> None:
    """Record a provider call's outcome on its span: response model, tokens, finish reason (and the
    reply text with capture_content), or the error kind."""
    if span is None:
        return
    if error is not None:
        span.set_attribute("error.type", str(getattr(error, "kind", None) or type(error).__name__))
        _error(span, str(error))
        return
    span.set_attribute("gen_ai.response.model", response.model or "")
    span.set_attribute("gen_ai.usage.input_tokens", int(response.usage.input))
    span.set_attribute("gen_ai.usage.output_tokens", int(response.usage.output))
    span.set_attribute("gen_ai.response.finish_reasons", [str(response.stop_reason)])
    if response.provider:
        span.set_attribute("reasonkit.provider", response.provider)
    if response.cached:
        span.set_attribute("reasonkit.cached", True)
    if capture_content():
        import json

        span.set_attribute(
            "gen_ai.output.messages", json.dumps([{"role": "assistant", "content": _text(response.text)}])
        )
