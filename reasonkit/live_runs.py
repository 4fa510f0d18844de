"""A run in progress in this process (`LiveRun`): its result, filled in by the engine as it goes,
and a progress summary for `run_result`, the run resource and progress notifications.

Apart from the run service (reasonkit/runs.py) so that the server can name it without importing the
engine, which the first tool call loads (docs/benchmarks.md, section 9)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reasonkit.engine import Engine, Event, RunResult

__all__ = ["LiveRun", "PreparedRun"]


def _where(event: Event) -> str:
    where = ".".join(x for x in (event.entry, event.step) if x)
    return where + (f"[{event.item}]" if event.item is not None else "")


@dataclass
class LiveRun:
    """A run in progress in this process: its result (filled in by the engine as it goes) and a
    progress summary for `run_result` and the run resource."""

    result: RunResult
    background: bool = False
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    last: str = ""
    finished: bool = False
    #: The cancel scope around the engine while it executes (set by `RunService.execute`).
    scope: Any = None
    #: Why `stop` ended the run (None: it was not stopped).
    stopped: str | None = None

    def stop(self, reason: str) -> bool:
        """End the run as `cancelled` with `reason`, from outside its caller (tasks/cancel, a cancel
        request from another replica): a run not executing yet stops as soon as it starts. False
        when it has already finished."""
        if self.finished:
            return False
        self.stopped = reason
        if self.scope is not None:
            self.scope.cancel()
        return True

    def track(self, event: Event) -> None:
        """Update the progress summary from an engine event."""
        if event.total:
            self.total = event.total
        if event.type == "step_finished":
            self.done = max(self.done, event.done)
            self.last = f"{_where(event)} {event.status or ''}".strip()

    def describe(self, event: Event) -> tuple[float, str] | None:
        """(progress value, message) for an event worth reporting to a caller; None otherwise."""
        if event.type == "run_started":
            return 0.0, f"started {self.result.kind} {self.result.name}"
        if event.type != "step_finished":
            return None
        confidence = f" (confidence {event.confidence:.2f})" if event.confidence is not None else ""
        return float(event.done), f"{_where(event)}: {event.status}{confidence}"

    def progress(self) -> dict[str, Any]:
        elapsed = round(time.monotonic() - self.started, 1)
        return {"done": self.done, "total": self.total, "last": self.last, "elapsed_s": elapsed}


@dataclass
class PreparedRun:
    """A checked request, ready to execute: the engine, the result it fills in, and labels."""

    engine: Engine
    live: LiveRun
    method: str  # the tool name (server) or "rk think" (CLI): the `method` metrics label
    crashed: bool = False  # the engine raised: the result is marked failed with an internal error
    # What a cancellation from outside means for this caller, stored as the stop reason (the MCP
    # server: the client cancelled or went away); None: the engine's "cancelled by the caller".
    cancel_reason: str | None = None

    @property
    def result(self) -> RunResult:
        return self.live.result

    @property
    def label(self) -> str:
        """The `profile` metrics label: the profile or protocol that runs."""
        return self.live.result.name
