"""Run the engine for `rk think` with per-step progress on stderr: a live rich display on a
terminal, plain lines otherwise (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio

from reasonkit.engine import Budget, Engine, Event, RunResult


def _line(ev: Event, t0: float) -> str | None:
    where = ".".join(x for x in (ev.entry, ev.step) if x)
    if ev.item:
        where += f"[{ev.item}]"
    t = f"{time.monotonic() - t0:6.1f}s"
    if ev.type == "step_started":
        return f"{t} start  {where}"
    if ev.type == "step_finished":
        c = f" confidence {ev.confidence:.2f}" if ev.confidence is not None else ""
        return f"{t} {ev.status or 'done':<6} {where}{c}  ({ev.done}/{ev.total} steps)"
    if ev.type == "entry_skipped":
        return f"{t} skip   {ev.entry}: {ev.message}"
    if ev.type == "entry_finished":
        c = f" confidence {ev.confidence:.2f}" if ev.confidence is not None else ""
        return f"{t} {ev.entry} {ev.status}{c}"
    return None


def run_with_progress(settings, registry, provider, protocol: str | None, profile: str | None, inputs: dict[str, Any], budget: Budget, quiet: bool) -> RunResult:
    engine = Engine(
        registry,
        provider,
        max_concurrency=settings.engine.max_concurrency,
        temperature=settings.llm.temperature,
        max_tokens=settings.llm.max_tokens,
    )
    t0 = time.monotonic()
    live = None
    if not quiet and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        live = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        task = live.add_task(f"{profile or protocol}", total=None)

    def on_event(ev: Event) -> None:
        if quiet:
            return
        if live is not None:
            live.update(task, total=ev.total or None, completed=ev.done, description=f"{profile or protocol}: {ev.entry or ''} {ev.step or ''}".strip())
            if ev.type in ("entry_finished", "entry_skipped"):
                line = _line(ev, t0)
                if line:
                    live.console.print(line)
            return
        line = _line(ev, t0)
        if line:
            print(line, file=sys.stderr, flush=True)

    async def go() -> RunResult:
        try:
            if protocol:
                return await engine.run_protocol(protocol, inputs, budget=budget, on_event=on_event)
            assert profile is not None
            return await engine.run_profile(profile, inputs, budget=budget, on_event=on_event)
        finally:
            await provider.aclose()

    if live is not None:
        with live:
            return anyio.run(go)
    return anyio.run(go)
