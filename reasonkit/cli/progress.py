"""Per-step progress of `rk think` on stderr: a live rich display on a terminal, plain lines
otherwise (logs, CI, pipes). It only displays engine events; the run service runs the engine."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from reasonkit.engine import Event
from reasonkit.safetext import strip_controls


def progress_line(event: Event, started: float) -> str | None:
    where = ".".join(x for x in (event.entry, event.step) if x)
    if event.item:
        where += f"[{event.item}]"
    elapsed = f"{time.monotonic() - started:6.1f}s"
    confidence = f" confidence {event.confidence:.2f}" if event.confidence is not None else ""
    if event.type == "step_started":
        return f"{elapsed} start  {where}"
    if event.type == "step_finished":
        return (
            f"{elapsed} {event.status or 'done':<6} {where}{confidence}  ({event.done}/{event.total} steps)"
        )
    if event.type == "entry_skipped":
        return f"{elapsed} skip   {event.entry}: {event.message}"
    if event.type == "entry_finished":
        return f"{elapsed} {event.entry} {event.status}{confidence}"
    return None


class ProgressDisplay:
    """`with ProgressDisplay(label, quiet): ...`, passing `display.on_event` as the progress sink."""

    def __init__(self, label: str, quiet: bool):
        self.label = label
        self.quiet = quiet
        self.started = time.monotonic()
        self._live: Any = None
        self._task: Any = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._live = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._live.add_task(label, total=None)

    def __enter__(self) -> ProgressDisplay:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)

    def on_event(self, event: Event) -> None:
        if self.quiet:
            return
        line = strip_controls(progress_line(event, self.started) or "")  # step names, errors: run content
        if self._live is not None:
            where = f"{event.entry or ''} {event.step or ''}".strip()
            self._live.update(
                self._task,
                total=event.total or None,
                completed=event.done,
                description=f"{self.label}: {where}".strip(),
            )
            if line and event.type in ("entry_finished", "entry_skipped"):
                self._live.console.print(line)
            return
        # Plain lines (a log, CI, a pipe): one per step and per entry; a for_each step's items only
        # move the live bar on a terminal.
        if line and event.item is None:
            print(line, file=sys.stderr, flush=True)
