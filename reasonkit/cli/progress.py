"""Per-step progress of `rk think` on stderr: a live rich display on a terminal, plain lines
otherwise (logs, CI, pipes). It only displays engine events; the run service runs the engine.

On a terminal the display also shows the reply being generated (the engine's `text` events, from
the embedded model and streaming providers) under the bar: the step that is writing, and the tail
of its text. It sticks to one step until that step finishes (parallel items would otherwise take
turns), so the last thing written before the result is the final step's reply. The display is
transient: the result printed on stdout replaces it, and stdout never sees the streamed text
(`--format json` stays one object). Without a terminal nothing is streamed: plain lines as before.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

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


TAIL_CHARS = 480  # how much of the reply being written stays on screen
KEEP_CHARS = 4000  # how much of it is kept (the tail is cut from this)
REFRESH_SECS = 0.1  # at most this often a new piece of text redraws the display


class _Reply:
    """The reply being written, shared between the provider's thread (`add`) and rich's refresh."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.where: tuple[str | None, str | None, int | None] | None = None
        self.text = ""
        self.done = False  # the step finished: the next step to write takes over

    def add(self, event: Event) -> bool:
        """Keep the piece if it is the followed step's (or the followed one is done); True if kept."""
        where = (event.entry, event.step, event.item)
        with self.lock:
            if where != self.where:
                if self.where is not None and not self.done:
                    return False
                self.where, self.text, self.done = where, "", False
            self.text = (self.text + event.message)[-KEEP_CHARS:]
            return True

    def finished(self, event: Event) -> None:
        with self.lock:
            if (event.entry, event.step, event.item) == self.where or event.type == "entry_finished":
                self.done = True

    def renderable(self) -> Any:
        from rich.text import Text

        with self.lock:
            if self.where is None:
                return None
            entry, step, item = self.where
            label = ".".join(x for x in (entry, step) if x) + (f"[{item}]" if item else "")
            tail = " ".join(self.text.split())[-TAIL_CHARS:]
        shown = Text(f"{label} writing: ", style="dim")
        shown.append(tail)
        return shown


class ProgressDisplay:
    """`with ProgressDisplay(label, quiet): ...`, passing `display.on_event` as the progress sink
    and, when `streaming`, `display.on_text` as the engine's text callback. `stream`: where it
    writes (stderr)."""

    def __init__(self, label: str, quiet: bool, stream: TextIO | None = None):
        self.label = label
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._live: Any = None
        self._task: Any = None
        self._reply = _Reply()
        self._drawn = 0.0
        if not quiet and self.stream.isatty():
            self._live = _live_progress(self.stream, self._reply)
            self._task = self._live.add_task(label, total=None)

    @property
    def streaming(self) -> bool:
        """Whether replies are shown as they are written (a terminal, not --quiet)."""
        return self._live is not None

    def on_text(self, event: Event) -> None:
        """A piece of a reply (a `text` event); called from the provider's thread."""
        if self._live is None or not self._reply.add(event):
            return
        now = time.monotonic()
        if now - self._drawn >= REFRESH_SECS:
            self._drawn = now
            self._live.refresh()

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
            if event.type in ("step_finished", "entry_finished"):
                self._reply.finished(event)
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
            print(line, file=self.stream, flush=True)


def _live_progress(stream: TextIO, reply: _Reply) -> Any:
    """rich's progress bar with the reply being written under it."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    class WithReply(Progress):
        def get_renderables(self) -> Any:
            yield from super().get_renderables()
            shown = reply.renderable()
            if shown is not None:
                yield shown

    return WithReply(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=stream),
        transient=True,
    )
