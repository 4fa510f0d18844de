"""What an HTTP error answer means: `classify_http` judges an error by its status AND its body,
`classify` turns an SDK exception into a `ProviderError`, `error_detail` takes the human part of an
error body. A server that answers a request-validation error with HTTP 500 (llama-cpp-python does)
is not retried as a server fault; a rejection that names a field of the output mode in use is kind
`unsupported`, which moves the output-mode negotiation on (negotiation.py).

Providers echo part of a rejected key ("Incorrect API key provided: sk-abc***xyz"); the detail is
scrubbed of such echoes (`scrub_key_echoes`) before it becomes an error message, because messages
are stored with runs, logged and shown to MCP clients."""

from __future__ import annotations

import json
import re
from typing import Any

from reasonkit.errors import ProviderError
from reasonkit.providers.base import parse_retry_after
from reasonkit.providers.negotiation import OutputMode

__all__ = ["classify", "classify_http", "error_detail", "scrub_key_echoes"]

_KEY_ECHOES: list[tuple[re.Pattern[str], str]] = [
    # a partly masked token: sk-abc1****xyz9, abcd****wxyz
    (re.compile(r"[\w\-.]*\*{3,}[\w\-]*"), "***"),
    # sk-..., sk-ant-..., sk-or-v1-... in full
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{3,}"), "***"),
    # "API key provided: gsk_abc123", "api_key=xai-...": a value with a digit in it
    (re.compile(r"(?i)(\bapi[ _-]?key(?: provided)?\s*[:=]?\s*)(?=[^\s,;]*\d)[^\s,;'\"]{6,}"), r"\1***"),
    (re.compile(r"(?i)\bbearer\s+[\w.~+/=\-]{8,}"), "Bearer ***"),
]


def scrub_key_echoes(text: str) -> str:
    """`text` with whatever a provider echoed of an API key or token replaced by `***`."""
    for pattern, replacement in _KEY_ECHOES:
        text = pattern.sub(replacement, text)
    return text


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


# OpenAI and llama-cpp-python's server split what was requested: "(4199 in the messages, 5000 in
# the completion)"; the prompt's share tells how much of the window is left for the reply.
_PROMPT_TOKENS = re.compile(r"\((\d+) in the messages", re.I)
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
    ("body.response_format.type: Input should be ..."), a string `error`, else the raw text; with
    key echoes scrubbed."""
    return scrub_key_echoes(_detail(body, text))


def _detail(body: Any, text: str) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, str) and error.strip():
            return error.strip()[:300]
        if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"].strip():
            return error["message"].strip()[:300]
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
        match = pattern.search(hay)
        if match:
            requested, window = int(match.group(req_group)), int(match.group(win_group))
            overflow = ProviderError(
                provider,
                "context_overflow",
                f"the prompt does not fit the model's context window ({requested} tokens requested, "
                f"the window is {window}): shorten the input or lower max_tokens (HTTP {status}: {detail})",
                status,
            )
            overflow.window = window
            prompt = _PROMPT_TOKENS.search(hay)
            overflow.prompt_tokens = int(prompt.group(1)) if prompt else None
            return overflow
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
