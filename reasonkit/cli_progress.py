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
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

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

    store = recorder = None
    result = engine.new_result("protocol" if protocol else "profile", protocol or profile or "", inputs)
    callback: Any = on_event
    if settings.storage.save_runs:
        from reasonkit.store import RunRecorder, RunStore, StoreError

        try:
            store = RunStore.for_settings(settings)
            store.mark_interrupted()
            if settings.storage.retention_days or settings.storage.max_runs:
                store.prune(settings.storage.retention_days, settings.storage.max_runs)
            recorder = RunRecorder(store, result, forward=on_event)
            callback = recorder.on_event
        except (StoreError, OSError) as exc:
            print(f"rk: warning: runs will not be saved: {exc}", file=sys.stderr)
            store = recorder = None

    async def go() -> RunResult:
        try:
            if protocol:
                return await engine.run_protocol(protocol, inputs, budget=budget, on_event=callback, result=result)
            assert profile is not None
            return await engine.run_profile(profile, inputs, budget=budget, on_event=callback, result=result)
        finally:
            if recorder is not None:
                recorder.finish(result)
            await provider.aclose()

    try:
        if live is not None:
            with live:
                return anyio.run(go)
        return anyio.run(go)
    finally:
        if store is not None:
            store.close()
