"""Providers on the official SDKs: the shared base (retries, timeouts, output-mode negotiation) and
the error classification. Anthropic Messages is in `anthropic.py`; OpenAI Chat Completions (which
also covers OpenRouter, Ollama, vLLM, LM Studio and llama.cpp servers through their
OpenAI-compatible base URLs) in `openai_compat.py`. Both classes are importable from here too.

SDK retries are turned off (max_retries=0): `with_retries` in base.py is the only retry loop.
How the schema is asked for (the output mode) is negotiated per (provider, base URL, model): see
negotiation.py. Errors are classified from the status AND the body (`classify_http`): a server
that answers a request-validation error with HTTP 500 (llama-cpp-python does) is not retried as a
server fault.
"""

from __future__ import annotations

import json
import re
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from reasonkit.providers.base import (
    LLMRequest,
    LLMResponse,
    PriceTable,
    Provider,
    ProviderError,
    parse_retry_after,
    with_retries,
)
from reasonkit.providers.negotiation import (
    NEGOTIATION,
    OPENAI_MODES,
    SCHEMA_IN_PROMPT,
    OutputMode,
    has_json_object,
    resolve_mode,
)

if TYPE_CHECKING:
    from reasonkit.providers.anthropic import AnthropicProvider
    from reasonkit.providers.openai_compat import OpenAIProvider

__all__ = [
    "AnthropicProvider",
    "JSON_TEXT_INSTRUCTION",
    "OpenAIProvider",
    "TOOL_INSTRUCTION",
    "classify",
    "classify_http",
]

JSON_TEXT_INSTRUCTION = (
    "Reply with one JSON object and nothing else: no prose, no code fences. "
    "It must validate against this JSON schema:\n<schema>\n{schema}\n</schema>"
)
TOOL_INSTRUCTION = (
    "Answer by calling the function `{name}`. Its arguments are one JSON object that must validate "
    "against this JSON schema:\n<schema>\n{schema}\n</schema>"
)
TOOL_DESCRIPTION = "Record your answer. Fill every field as the schema describes."


def __getattr__(name: str) -> Any:
    # The provider classes live in their own modules; `from reasonkit.providers.sdk import
    # AnthropicProvider` keeps working (lazily, so either module can be imported first).
    if name == "AnthropicProvider":
        from reasonkit.providers.anthropic import AnthropicProvider

        return AnthropicProvider
    if name == "OpenAIProvider":
        from reasonkit.providers.openai_compat import OpenAIProvider

        return OpenAIProvider
    raise AttributeError(name)


# --------------------------------------------------------------------------------------------------
# Error classification
# --------------------------------------------------------------------------------------------------


def _status_kind(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status in (408, 409, 425, 429):
        return "rate_limit" if status == 429 else "server"
    if status >= 500:
        return "server"
    return "bad_request"


# (pattern, group of the requested tokens, group of the window), most specific first.
_CONTEXT_SIZES: list[tuple[re.Pattern[str], int, int]] = [
    # llama-cpp-python (raw): "Requested tokens (5000) exceed context window of 4096"
    (re.compile(r"requested tokens \((\d+)\) exceed context window of (\d+)", re.I), 1, 2),
    # OpenAI, vLLM, llama-cpp-python, OpenRouter: "maximum context length is 4096 tokens. However,
    # you requested 5000 tokens" / "your messages resulted in 5000 tokens"
    (
        re.compile(
            r"maximum context length is (\d+) tokens.{0,80}?(?:requested|resulted in) (?:about )?(\d+)",
            re.I | re.S,
        ),
        2,
        1,
    ),
    # llama.cpp llama-server: "request (5000 tokens) exceeds the available context size (4096 tokens)"
    (
        re.compile(r"request \((\d+) tokens\) exceeds? the available context size \((\d+) tokens\)", re.I),
        1,
        2,
    ),
    # Anthropic: "prompt is too long: 210000 tokens > 200000 maximum"
    (re.compile(r"prompt is too long: (\d+) tokens > (\d+)", re.I), 1, 2),
]
_CONTEXT_WORDS = (
    "context length",
    "context_length",
    "maximum context",
    "too many tokens",
    "exceeds the context window",
    "exceed context window",
    "context window of",
    "available context size",
    "exceed_context_size",
    "prompt is too long",
)
# Request fields of the output modes: a rejection that names one is about the output mode.
_MODE_FIELDS = re.compile(
    r"response_format|json_schema|json_object|tool_choice|\btools?\b|function[_ ]?call|\bfunctions\b"
    r"|guided_json|structured output",
    re.I,
)
_REJECTION_WORDS = (
    "not supported",
    "unsupported",
    "input should be",
    "validation error",
    "field required",
    "extra inputs are not permitted",
    "extra_forbidden",
    "literal_error",
    "not implemented",
    "unrecognized",
    "unknown parameter",
    "invalid value",
    "must be",
)
_VALIDATION_SHAPE = re.compile(r"""['"]loc['"]\s*:""")
_MODEL_UNKNOWN = re.compile(
    r"model\b[^.\n]{0,120}?\b(?:not found|does not exist|not exist|is not available|unknown)"
    r"|model_not_found|no such model|unknown model",
    re.I,
)


def error_detail(body: Any, text: str = "") -> str:
    """The human part of an error body: `error.message`, `message`, FastAPI's `detail` list
    ("body.response_format.type: Input should be ..."), a string `error`, else the raw text."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, str) and err.strip():
            return err.strip()[:300]
        if isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"].strip():
            return err["message"].strip()[:300]
        detail = body.get("detail")
        if isinstance(detail, str) and detail.strip():
            return detail.strip()[:300]
        if isinstance(detail, list):
            parts = []
            for item in detail[:5]:
                if isinstance(item, dict):
                    loc = ".".join(str(x) for x in item.get("loc") or [])
                    parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
            if parts:
                return "; ".join(parts)[:300]
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return text.strip()[:300]


def _parse_body(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def classify_http(
    provider: str,
    status: int,
    body: Any,
    text: str = "",
    *,
    mode: OutputMode | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """An HTTP error answer -> ProviderError, judged by status AND body:

    - context overflow (any status): kind `context_overflow`, with the sizes when the body has them;
    - 401/403: `auth`;
    - 404 or a body saying the model is unknown: `not_found`;
    - 400/422, 501, or a 500 that is really a request-validation error (pydantic/FastAPI `loc`/`msg`,
      "Input should be", "not supported", "unsupported"...): `unsupported` when it names a field
      of the output mode in use (`mode`: response_format, json_schema, json_object, tools,
      tool_choice), else `bad_request` - never retried;
    - other 5xx, 408/409/425: `server`; 429: `rate_limit`.
    """
    if body is None or body == "":
        body = _parse_body(text) if text else None
    detail = error_detail(body, text)
    raw = text or (json.dumps(body) if body is not None and not isinstance(body, str) else str(body or ""))
    hay = f"{detail}\n{raw}"
    low = hay.lower()

    for pattern, req_group, win_group in _CONTEXT_SIZES:
        m = pattern.search(hay)
        if m:
            requested, window = int(m.group(req_group)), int(m.group(win_group))
            return ProviderError(
                provider,
                "context_overflow",
                f"the prompt does not fit the model's context window ({requested} tokens requested, "
                f"the window is {window}): shorten the input or lower max_tokens (HTTP {status}: {detail})",
                status,
            )
    if any(word in low for word in _CONTEXT_WORDS):
        return ProviderError(
            provider,
            "context_overflow",
            f"the prompt does not fit the model's context window: shorten the input or lower "
            f"max_tokens (HTTP {status}: {detail})",
            status,
        )
    if status in (401, 403):
        return ProviderError(
            provider, "auth", f"HTTP {status}: {detail} (check the API key for this provider)", status
        )
    if status == 404 or (status in (400, 422) and _MODEL_UNKNOWN.search(hay)):
        return ProviderError(provider, "not_found", f"HTTP {status}: {detail}", status)

    names_mode = mode not in (None, "prompt") and _MODE_FIELDS.search(hay) is not None
    looks_rejected = names_mode or any(w in low for w in _REJECTION_WORDS) or _VALIDATION_SHAPE.search(hay)
    if status in (400, 422, 501) or (status == 500 and looks_rejected):
        if names_mode:
            return ProviderError(
                provider,
                "unsupported",
                f"the server does not take output mode {mode} (HTTP {status}: {detail})",
                status,
            )
        what = "a request-validation error" if status >= 500 else f"HTTP {status}"
        return ProviderError(provider, "bad_request", f"{what}: {detail}", status)
    kind = _status_kind(status)
    suffix = f": {detail}" if detail else ""
    message = f"HTTP {status}{suffix}"
    return ProviderError(provider, kind, message, status, retry_after)  # type: ignore[arg-type]


def classify(provider: str, exc: Exception, mode: OutputMode | None = None) -> ProviderError:
    """Turn an SDK exception into a ProviderError with a message that carries no secrets."""
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if isinstance(status, int):
        retry_after = None
        text = ""
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            try:
                text = response.text[:20_000]
            except Exception:  # noqa: BLE001 - a streamed or closed body: judge by `body` alone
                text = ""
        return classify_http(
            provider, status, getattr(exc, "body", None), text, mode=mode, retry_after=retry_after
        )
    name = type(exc).__name__
    if "Timeout" in name:
        return ProviderError(provider, "timeout", "the request timed out")
    if "Connection" in name:
        return ProviderError(
            provider,
            "connection",
            "the connection failed or was reset (is the base URL right and the server up?)",
        )
    if "ResponseValidation" in name or isinstance(exc, json.JSONDecodeError | ValueError):
        return ProviderError(
            provider, "bad_response", "the server sent a response that is not valid for its API"
        )
    return ProviderError(provider, "other", f"{name}")


# --------------------------------------------------------------------------------------------------
# The shared base
# --------------------------------------------------------------------------------------------------


class _SDKProvider(Provider):
    # The output modes this wire format can use, strongest first (negotiation.py).
    modes: tuple[OutputMode, ...] = OPENAI_MODES
    # Modes whose requests also carry the schema in the system prompt.
    schema_in_prompt: frozenset[str] = SCHEMA_IN_PROMPT

    def __init__(
        self,
        name: str,
        model: str,
        prices: PriceTable,
        max_retries: int = 3,
        output_mode: str | None = "auto",
        timeout: float | None = None,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 20.0,
        on_retry: Callable[[ProviderError, int, float], None] | None = None,
    ):
        self.name = name
        self.model = model
        self.prices = prices
        self.max_retries = max_retries
        self.output_mode = output_mode or "auto"
        self.forced_mode = resolve_mode(output_mode, self.modes)  # None: negotiate ("auto")
        # Whole-attempt deadline. The SDK's own timeout bounds each network read, so a reply that
        # trickles in slowly (a byte now and then) would never trip it; this one does.
        self.timeout = timeout
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.on_retry = on_retry  # (error, attempt, delay) before each retry: metrics hook
        self.base_url = ""  # set by the subclass from its client

    # ---- what the subclasses implement ----

    @abstractmethod
    async def _once(self, request: LLMRequest, mode: OutputMode | None) -> LLMResponse:
        """One request. `mode` is None when the request has no schema."""

    @abstractmethod
    async def list_models(self, request_timeout: float = 3.0) -> list[str]:
        """The model ids the server lists (GET {base}/models); raises ProviderError."""

    # ---- negotiation ----

    def _key(self, request: LLMRequest) -> tuple[str, str, str]:
        return (self.name, self.base_url, request.model or self.model)

    def output_modes(self) -> list[dict[str, Any]]:
        """How this provider asks for structured output, per model it has been used with: provider,
        base_url, model, mode, state (untested | works | forced) and the modes that failed."""
        rows = NEGOTIATION.snapshot(self.name, self.base_url)
        if not any(r["model"] == self.model for r in rows):
            rows.insert(
                0,
                {
                    "provider": self.name,
                    "base_url": self.base_url,
                    "model": self.model,
                    "mode": self.forced_mode or self.modes[0],
                    "state": "forced" if self.forced_mode else "untested",
                    "failed": [],
                },
            )
        return rows

    async def _timed(self, request: LLMRequest, mode: OutputMode | None) -> LLMResponse:
        if self.timeout is None:
            return await self._once(request, mode)
        try:
            with anyio.fail_after(self.timeout):
                return await self._once(request, mode)
        except TimeoutError:
            raise ProviderError(
                self.name, "timeout", f"no complete reply within {self.timeout:g}s (timeout_secs)"
            ) from None

    async def _attempt(self, request: LLMRequest) -> LLMResponse:
        """One attempt of the retry loop. A rejected output mode moves on to the next mode at once,
        inside the same attempt (a rejection is not a fault to back off from)."""
        if not request.schema:
            return await self._timed(request, None)
        key = self._key(request)
        for _ in range(len(self.modes) + 1):
            mode = NEGOTIATION.mode_for(key, self.modes, self.forced_mode)
            try:
                resp = await self._timed(request, mode)
            except ProviderError as exc:
                if exc.kind != "unsupported":
                    raise
                if self.forced_mode is not None:
                    raise ProviderError(
                        self.name,
                        "unsupported",
                        f'{exc.message}; output_mode = "{mode}" is set for this provider: set it to '
                        f'"auto" to let ReasonKit find a mode the server takes',
                        exc.status,
                    ) from None
                if NEGOTIATION.rejected(key, mode, exc.message) is None:
                    raise
                continue
            self._observe(key, mode, resp)
            return resp
        raise ProviderError(self.name, "unsupported", "no output mode left to try")  # pragma: no cover

    def _observe(self, key: tuple[str, str, str], mode: OutputMode, resp: LLMResponse) -> None:
        """Remember what a reply shows about `mode` (see the rules in negotiation.py)."""
        if self.forced_mode is not None:
            return
        text = resp.text.strip()
        if mode != "prompt" and resp.parsed is None:
            if not text or resp.stop_reason == "max_tokens":
                return  # an empty or cut-off reply proves nothing either way
            if not has_json_object(text):
                NEGOTIATION.ignored(key, mode, f"the reply began {text[:60]!r}")
                return
        NEGOTIATION.worked(key, mode)

    async def _not_found(self, exc: ProviderError, model: str) -> ProviderError:
        """A 404 / unknown-model answer -> a message that says the model is unknown and lists the
        server's models (one short GET {base}/models; its failure is ignored)."""
        try:
            models = await self.list_models(request_timeout=3.0)
        except Exception:  # noqa: BLE001 - the listing is a courtesy
            models = None
        if models is not None and model in models:
            msg = (
                f"the server lists model '{model}' but answered {exc.message}: check the base URL "
                f"({self.base_url}; OpenAI-compatible servers usually end in /v1)"
            )
        else:
            msg = f"the server does not know model '{model}' ({exc.message})"
            if models:
                shown = ", ".join(models[:20]) + (f" and {len(models) - 20} more" if len(models) > 20 else "")
                msg += f"; it serves: {shown}"
            elif models is None:
                msg += "; check the model name and the base URL"
        return ProviderError(self.name, "not_found", msg, exc.status)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        resp, attempts = await with_retries(
            lambda: self._attempt(request),
            self.max_retries,
            base_delay=self.retry_base_delay,
            max_delay=self.retry_max_delay,
            on_retry=self.on_retry,
        )
        resp.attempts = attempts
        resp.latency_ms = (time.perf_counter() - started) * 1000
        resp.cost_usd, resp.price_known = self.prices.cost(resp.model, resp.usage)
        return resp

    def _system_for(self, request: LLMRequest, mode: OutputMode | None) -> str | None:
        if mode is None or mode not in self.schema_in_prompt or not request.schema:
            return request.system
        schema = json.dumps(request.schema, indent=2)
        if mode == "tools":
            extra = TOOL_INSTRUCTION.format(name=request.schema_name, schema=schema)
        else:
            extra = JSON_TEXT_INSTRUCTION.format(schema=schema)
        return f"{request.system}\n\n{extra}" if request.system else extra
