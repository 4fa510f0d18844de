"""The state of one run: its budget (time, tokens, USD), progress events, and the budget checks that
stop the scheduling of new steps."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from reasonkit.engine.result import RunResult, StepTrace
from reasonkit.errors import HALTING, InputError, ProviderError

__all__ = [
    "Budget",
    "Event",
    "EventCallback",
    "RunState",
    "TextCallback",
    "parse_budget",
    "unenforced_budget",
]


@dataclass
class Event:
    # run_started, entry_started, entry_skipped, entry_finished, step_started, step_finished,
    # run_finished; and `text` (a piece of a reply as it is generated, in `message`), which goes
    # only to a `TextCallback`, never to the progress callback (nor the recorder, nor MCP progress)
    type: str
    run_id: str
    entry: str | None = None
    step: str | None = None
    item: int | None = None
    status: str | None = None
    confidence: float | None = None
    message: str = ""
    done: int = 0
    total: int = 0


EventCallback = Callable[[Event], Awaitable[None] | None]
# Receives `text` events; synchronous and called from the provider's thread (the embedded model
# generates in a worker thread), so it must only hand the text on.
TextCallback = Callable[[Event], None]


def unenforced_budget(usd: float | None, unpriced: list[str]) -> str | None:
    """Why a cost budget cannot be enforced (models whose price is unknown cost 0), or None."""
    if usd is None or not unpriced:
        return None
    models = ", ".join(sorted(set(unpriced)))
    return (
        f"the cost budget ${usd:g} is not enforced: no price is known for {models} "
        '(add it under [llm] prices, e.g. prices = { "MODEL" = { input = 1.0, output = 2.0 } }, '
        "in USD per million tokens)"
    )


@dataclass
class Budget:
    seconds: float | None = None
    tokens: int | None = None
    usd: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {"seconds": self.seconds, "tokens": self.tokens, "usd": self.usd}


def parse_budget(specs: list[str] | str | None) -> Budget:
    """'30s', '2m', '4000t', '$0.05' (several may be combined, comma-separated or repeated)."""
    budget = Budget()
    if not specs:
        return budget
    items = [specs] if isinstance(specs, str) else list(specs)
    for raw in (p.strip() for s in items for p in s.split(",")):
        if not raw:
            continue
        try:
            if raw.startswith("$"):
                budget.usd = float(raw[1:])
                ok = budget.usd > 0
            elif raw[-1] in "tT":
                budget.tokens = int(raw[:-1].replace("_", ""))
                ok = budget.tokens > 0
            elif raw[-1] in "sS":
                budget.seconds = float(raw[:-1])
                ok = budget.seconds > 0
            elif raw[-1] in "mM":
                budget.seconds = float(raw[:-1]) * 60
                ok = budget.seconds > 0
            else:
                ok = False
        except ValueError:
            ok = False
        if not ok:
            raise InputError(
                f"budget '{raw}' is not understood: use e.g. 30s, 2m, 4000t or $0.05 (positive numbers)"
            )
    return budget


@dataclass
class RunState:
    """Everything the parts of one run share: the result being built, the budget, the concurrency
    limiter, the progress callback and counters, and notes about what the small-model caps changed."""

    result: RunResult
    budget: Budget
    limiter: anyio.CapacityLimiter
    on_event: EventCallback | None
    deadline: float | None
    exhausted: str | None = None
    # why the run stopped as a whole: the provider failed in a way no later step can avoid
    # (unreachable, bad key, unknown model, circuit open); see `halt_on`
    halted: str | None = None
    scope: anyio.CancelScope | None = None  # the run's scope, cancelled by a halt
    done: int = 0
    total: int = 0
    # kind of trimming ("items", "max_tokens", "samples") -> {what: text}; see engine/caps.py
    cap_notes: dict[str, dict[str, str]] = field(default_factory=dict)
    on_text: TextCallback | None = None  # who watches replies as they are generated (`rk think`)

    def check_budget(self) -> str | None:
        """The reason the budget is spent (and stays spent) or the run halted, or None."""
        if self.halted:
            return self.halted
        if self.exhausted:
            return self.exhausted
        result, budget = self.result, self.budget
        if budget.tokens is not None and result.tokens.total >= budget.tokens:
            self.exhausted = f"token budget of {budget.tokens} reached ({result.tokens.total} used)"
        elif budget.usd is not None and result.cost_usd >= budget.usd:
            self.exhausted = f"cost budget of ${budget.usd:g} reached (${result.cost_usd:.4f} spent)"
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.exhausted = f"time budget of {budget.seconds:g}s reached"
        return self.exhausted

    def halt_on(self, exc: ProviderError) -> None:
        """Stop the whole run at once when a provider error will fail every later call too: no new
        step is scheduled and the steps in flight are cancelled (the run ends `failed`)."""
        if exc.kind not in HALTING or self.halted:
            return
        self.halted = f"provider failed, the run was stopped: {exc}"
        if self.scope is not None:
            self.scope.cancel()

    def text_sink(self, trace: StepTrace) -> Callable[[str], None] | None:
        """The `on_text` of a request made for `trace`: its pieces as `text` events naming the
        step (None when nobody watches, so providers need not decode for nobody)."""
        callback = self.on_text
        if callback is None:
            return None
        run_id, entry, step, item = self.result.run_id, trace.entry, trace.step_id, trace.item_index

        def sink(text: str) -> None:
            callback(Event("text", run_id, entry=entry, step=step, item=item, message=text))

        return sink

    async def emit(self, event: Event) -> None:
        if self.on_event is None:
            return
        event.done, event.total = event.done or self.done, event.total or self.total
        outcome = self.on_event(event)
        if inspect.isawaitable(outcome):
            await outcome
