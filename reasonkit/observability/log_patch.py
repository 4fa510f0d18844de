"""The loguru patcher `setup_logging` installs: every log record gets the current OpenTelemetry
`trace_id` and `span_id` (when tracing is on and a span is current; JSON lines show them as keys), and
with `[privacy] redact_pii` its message and string context values pass through `redact_pii`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reasonkit.observability import tracing
from reasonkit.observability.redaction import redact_pii

if TYPE_CHECKING:
    from reasonkit.config import Settings


def log_patcher(settings: Settings | None) -> Callable[[Any], None]:
    """A loguru patcher for these settings (`logger.configure(patcher=...)`)."""
    redact = settings is not None and settings.privacy.redact_pii

    def patch(record: Any) -> None:
        if tracing.tracer() is not None:
            ids = tracing.current_ids()
            if ids is not None:
                record["extra"].setdefault("trace_id", ids[0])
                record["extra"].setdefault("span_id", ids[1])
        if redact:
            record["message"] = redact_pii(record["message"])
            extra = record["extra"]
            for key, value in extra.items():
                if isinstance(value, str):
                    extra[key] = redact_pii(value)

    return patch
