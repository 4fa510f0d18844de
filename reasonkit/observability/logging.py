"""Logging: loguru to stderr (never stdout: on stdio stdout carries only MCP messages), optionally a
file; `[logging] format = "json"` writes one JSON object per line.

Context fields are bound with `logger.bind(request_id=..., tool=..., profile=..., duration_ms=...,
confidence=..., tokens=..., provider=..., model=..., tools_executed=[...])` and appear as top-level
keys in JSON lines; with tracing on, `trace_id` and `span_id` too (reasonkit.observability.log_patch).
`[logging] include_timestamps = false` leaves the time out (for collectors that stamp lines).
The warnings from reading deployment-guide settings (`Settings.compat_notes`) are logged once per
process. The stdlib `logging` records
of the MCP SDK, uvicorn and httpx are routed through the same sinks. Every line passes through
`redact()`: API keys, bearer tokens and Authorization headers never reach a log. Text lines have
their message and context with control characters escaped (`reasonkit.safetext.escape_controls`) and
JSON lines have no raw line separators, so a value from outside (a `%0a` in a URL path, a tool
argument) can never forge a log line, whoever logs it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger

from reasonkit import provider_kinds
from reasonkit.observability.log_patch import log_patcher
from reasonkit.safetext import escape_controls

if TYPE_CHECKING:
    from reasonkit.config import Settings

__all__ = ["CONTEXT_KEYS", "InterceptHandler", "LEVELS", "add_secrets", "redact", "setup_logging"]

LEVELS = {
    "trace": "TRACE",
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "critical": "CRITICAL",
    "off": "CRITICAL",
}
CONTEXT_KEYS = (
    "request_id",
    "tool",
    "profile",
    "run_id",
    "duration_ms",
    "confidence",
    "tokens",
    "status",
    "provider",
    "model",
    "tools_executed",
    "trace_id",
)

_SECRET_PATTERNS = [
    # provider keys: sk-..., sk-ant-..., sk-or-v1-...
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), "sk-***"),
    # Authorization / api-key style headers and key=value pairs
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization)(\"?\s*[:=]\s*\"?)(bearer|basic)?\s*[^\s\"',;]+"
        ),
        r"\1\2\3 ***",
    ),
    (
        re.compile(
            r"(?i)\b(x-api-key|api[_-]?key|access[_-]?token|auth[_-]?token|password|secret)(\"?\s*[:=]\s*\"?)[^\s\"',;&]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}"), "Bearer ***"),
    # credentials inside URLs: scheme://user:password@host
    (re.compile(r"([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@", re.I), r"\1***@"),
]
_extra_secrets: set[str] = set()
_notes_logged: set[str] = set()


def add_secrets(values: list[str | None]) -> None:
    """Register exact secret values (configured API keys, tokens) to scrub from every log line."""
    for v in values:
        if v and len(v) >= 6:
            _extra_secrets.add(v)


def redact(text: str) -> str:
    for secret in _extra_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _level(name: str | None) -> str:
    return LEVELS.get((name or "info").strip().lower(), "INFO")


def _redact_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    try:
        return json.loads(redact(json.dumps(value, default=str)))
    except ValueError:
        return redact(str(value))


def _json_line(record: Any, timestamps: bool = True) -> str:
    out: dict[str, Any] = {}
    if timestamps:
        out["timestamp"] = (
            record["time"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
    out["level"] = record["level"].name
    out["message"] = redact(record["message"])
    out["logger"] = record["extra"].get("logger_name") or record["name"]
    for key, value in record["extra"].items():
        if key == "logger_name":
            continue
        out[key] = _redact_value(value)
    if record["exception"] is not None:
        import traceback

        exc = record["exception"]
        out["exception"] = redact("".join(traceback.format_exception(exc.type, exc.value, exc.traceback)))
    # json.dumps escapes C0 controls; line separators some readers split on are escaped here.
    return json.dumps(out, ensure_ascii=False, default=str).translate(_JSON_LINE_BREAKS)


_JSON_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class _JsonSink:
    def __init__(self, stream: TextIO, timestamps: bool = True):
        self.stream = stream
        self.timestamps = timestamps

    def write(self, message: Any) -> None:
        try:
            self.stream.write(_json_line(message.record, self.timestamps) + "\n")
            self.stream.flush()
        except (ValueError, OSError):  # stream closed during shutdown
            pass


def _context_value(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def _text_format(record: Any, timestamps: bool = True) -> str:
    ctx = " ".join(
        f"{k}={_context_value(record['extra'][k])}"
        for k in CONTEXT_KEYS
        if record["extra"].get(k) not in (None, "", [])
    )
    record["extra"]["_ctx"] = escape_controls(redact(ctx))
    record["extra"]["_msg"] = escape_controls(redact(record["message"]))
    base = "{time:YYYY-MM-DD HH:mm:ss.SSS} | " if timestamps else ""
    base += "{level: <7} | {extra[_msg]}"
    if ctx:
        base += " | {extra[_ctx]}"
    return base + "\n{exception}"


def _text_format_no_time(record: Any) -> str:
    return _text_format(record, timestamps=False)


def _short_format(record: Any) -> str:
    """One short human line for a terminal (the CLI): `rk: warning: message (key=value ...)`."""
    _text_format(record, timestamps=False)  # fills extra[_msg] and extra[_ctx], redacted
    record["extra"]["_lvl"] = record["level"].name.lower()
    line = "rk: {extra[_lvl]}: {extra[_msg]}"
    if record["extra"]["_ctx"]:
        line += " ({extra[_ctx]})"
    return line + "\n"


class InterceptHandler(logging.Handler):
    """Route stdlib logging records into loguru (same sinks, same redaction)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break logging
            msg = str(record.msg)
        logger.bind(logger_name=record.name).opt(depth=0, exception=record.exc_info).log(level, msg)


def setup_logging(
    settings: Settings | None = None,
    *,
    stream: TextIO | None = None,
    level: str | None = None,
    fmt: str | None = None,
    short: bool = False,
) -> None:
    """Configure loguru for the process. Safe to call more than once (replaces the sinks).
    `short`: text lines on the stream are `rk: level: message` (the CLI on a terminal)."""
    lvl = _level(level or (settings.logging.level if settings else None))
    fmt = fmt or (settings.logging.format if settings else "text")
    stamps = settings.logging.include_timestamps if settings else True
    text_format = _text_format if stamps else _text_format_no_time
    out = stream or sys.stderr
    logger.remove()
    logger.configure(patcher=log_patcher(settings))  # trace ids; [privacy] redact_pii (log_patch.py)
    if fmt == "json":
        logger.add(
            _JsonSink(out, stamps), level=lvl, format="{message}", backtrace=False, diagnose=False, catch=True
        )
    else:
        logger.add(
            out,
            level=lvl,
            format=_short_format if short else text_format,
            backtrace=False,
            diagnose=False,
            colorize=False,
            catch=True,
        )
    if settings and settings.logging.file:
        path = settings.logging.file
        if fmt == "json":
            fh = open(path, "a", encoding="utf-8")
            logger.add(
                _JsonSink(fh, stamps),
                level=lvl,
                format="{message}",
                backtrace=False,
                diagnose=False,
                catch=True,
            )
        else:
            logger.add(
                path,
                level=lvl,
                format=text_format,
                backtrace=False,
                diagnose=False,
                catch=True,
                enqueue=False,
            )
    if settings is not None:
        secrets: list[str | None] = [
            p.api_key.get_secret_value() if p.api_key else None for p in settings.llm.providers.values()
        ]
        if settings.database.redis.url:
            secrets.append(settings.database.redis.url.get_secret_value())
        add_secrets(secrets)
        for note in settings.compat_notes:  # deployment-guide settings that are not used: once each
            if note not in _notes_logged:
                _notes_logged.add(note)
                logger.warning(note)
    # Library logs: warnings and errors by default, everything at debug/trace.
    lib_level = logging.DEBUG if lvl in ("TRACE", "DEBUG") else logging.WARNING
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, InterceptHandler)] + [InterceptHandler()]
    root.setLevel(lib_level)
    # The provider SDKs' loggers come from the kind registry (a new kind's SDK is routed too).
    for name in (
        "mcp",
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "httpx",
        "httpx2",
        "httpcore",
        *provider_kinds.sdk_loggers(),
    ):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
        lg.setLevel(lib_level)
