"""One run entry point: `RunService.run(request, hooks)`, the whole path of a run in one order, so
that `rk think` and the MCP tools cannot drift apart and the request metrics have one owner.

A shell describes the call (`RunRequest`) and what it adds around it (`RunHooks`); the service does
the rest:

    hooks.controls    the shell's own inputs out of the inputs (the MCP tools' deadline_s, ...)
    check, budget     the target and the inputs checked once; the budget (background: its own)
    hooks.admit       a run slot, released when the run ends (the server's admission control)
    hooks.provider    the LLM provider for this call
    prepare           the engine and the result
    hooks.prepared    the shell's notices (the CLI: store and budget warnings)
    hooks.repeat_of   idempotency: the first call's answer for a repeat (no run then)
    background        recorded as started, handed to `hooks.spawner()`; counted as `running`
    execute           run, record, count (runs.py); `hooks.started` / `hooks.ended` around it

Every refusal (bad inputs, busy, no provider, a store that cannot take the run) is a
`ReasonKitError` from a step or a hook: it comes back as `RunOutcome.refusal`, counted as an `error`
request. Every tools/call and `rk think` request is counted by `count_request` (finished runs where
they are recorded, runs.py `_finish`, so that `execute` alone, as `rk eval` uses it, counts too).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from reasonkit.errors import InputError, ReasonKitError
from reasonkit.live_runs import LiveRun
from reasonkit.observability.metrics import Metrics, Stopwatch

if TYPE_CHECKING:  # the engine is imported by the first run, not at server start (docs/benchmarks.md 9)
    from reasonkit.config import Settings
    from reasonkit.engine import Budget, Event, RunResult
    from reasonkit.live_runs import PreparedRun
    from reasonkit.providers.base import Provider

__all__ = [
    "BACKGROUND_DEFAULT_SECS",
    "CLI_METHOD",
    "NO_SLOT",
    "ProgressSink",
    "RunEntry",
    "RunHooks",
    "RunKind",
    "RunOutcome",
    "RunRequest",
    "Slot",
    "Spawn",
    "background_budget",
    "count_request",
]

RunKind = Literal["protocol", "profile"]
ProgressSink = Callable[["Event"], Awaitable[None] | None]
Spawn = Callable[[Callable[[], Coroutine[Any, Any, Any]]], None]
CLI_METHOD = "rk think"
BACKGROUND_DEFAULT_SECS = 600.0  # a background run's time budget when neither the call nor [engine] sets one


@dataclass
class RunRequest:
    """What one call asks to run. `method` is the `method` metrics label (the tool name, or
    "rk think"); `deadline` caps the time budget (the server's tool deadline)."""

    kind: RunKind
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    method: str = CLI_METHOD
    budget: Budget | None = None  # what the caller asked for; None: [engine] budget_*
    deadline: float | None = None
    background: bool = False


class Slot(Protocol):
    """A run slot held from admission to the end of the run."""

    def release(self) -> None: ...


class _NoSlot:
    def release(self) -> None:
        """Nothing was held: a shell without admission control."""


NO_SLOT = _NoSlot()


class RunHooks(ABC):
    """What a shell adds around a run. The defaults are a shell's with nothing to add (no slots, no
    idempotency keys, no progress, no background runs); every shell says which provider runs."""

    def controls(self, request: RunRequest) -> RunRequest:
        """The request with the shell's own inputs taken out of `inputs`; InputError names a bad one."""
        return request

    async def admit(self, request: RunRequest, budget: Budget) -> Slot:
        """A run slot for this call; a `ReasonKitError` (the server's `Busy`) refuses the call."""
        return NO_SLOT

    @abstractmethod
    def provider(self, request: RunRequest) -> Provider:
        """The provider for this call; `NoProviderConfigured` refuses the call."""

    async def prepared(self, run: PreparedRun, budget: Budget) -> None:  # noqa: B027 - optional: nothing by default
        """Called once the run is prepared, before anything is recorded."""

    async def repeat_of(self, request: RunRequest, inputs: dict[str, Any], run: PreparedRun) -> object:
        """The shell's answer when this call repeats an earlier one (then nothing runs); None: run."""
        return None

    def progress(self, live: LiveRun) -> ProgressSink | None:
        """Where a foreground run's progress goes (None: nowhere)."""
        return None

    def spawner(self) -> Spawn | None:
        """What starts a background run's job in a task that outlives the call; None: this shell
        has no such task (a background request is refused before anything is taken)."""
        return None

    def started(self, run: PreparedRun) -> None:  # noqa: B027 - optional: nothing by default
        """The run begins executing (the server counts it for draining)."""

    def ended(self, run: PreparedRun) -> None:  # noqa: B027 - optional: nothing by default
        """The run has finished executing, whatever its outcome."""


@dataclass
class RunOutcome:
    """What `RunService.run` did: refused (`refusal`), answered a repeat (`replay`), started in the
    background (`background`: still running), or ran to the end (`result`)."""

    run: PreparedRun | None = None
    budget: Budget | None = None
    refusal: ReasonKitError | None = None
    replay: object = None
    background: bool = False

    @property
    def result(self) -> RunResult | None:
        return self.run.result if self.run is not None else None


def count_request(metrics: Metrics, method: str, label: str, status: str, seconds: float) -> None:
    """The one place a tool call is counted (`reasonkit_requests_total`, `_duration_seconds`): a
    run's `label` is its profile or protocol; `status` is the run's, `error` for a refusal or a
    crash, `running` for a background start (counted again when it ends), `ok` for other tools.
    The MCP server counts its other methods itself (server/app.py)."""
    metrics.observe_request(method, label, status, seconds)


def background_budget(settings: Settings, deadline: float | None) -> Budget:
    """A background run's budget: the call's deadline, else `[engine] budget_secs`, else 600 s (no
    tool deadline: nobody waits for it)."""
    from reasonkit.engine import Budget

    engine = settings.engine
    seconds = deadline or engine.budget_secs or BACKGROUND_DEFAULT_SECS
    return Budget(seconds=seconds, tokens=engine.budget_tokens, usd=engine.budget_usd)


class RunEntry:
    """The entry half of `RunService` (a mixin): `run(request, hooks)`. Uses the service's `check`,
    `budget`, `prepare`, `record_start` and `execute`."""

    settings: Settings
    metrics: Metrics
    live: dict[str, LiveRun]

    if TYPE_CHECKING:  # what the mixin uses of the service it is mixed into (runs.RunService)

        def check(
            self, kind: RunKind, name: str, inputs: dict[str, Any], *, method: str
        ) -> dict[str, Any]: ...

        def budget(self, requested: Budget | None = None, *, deadline: float | None = None) -> Budget: ...

        def prepare(
            self,
            kind: RunKind,
            name: str,
            inputs: dict[str, Any],
            provider: Provider,
            *,
            method: str,
            background: bool = False,
        ) -> PreparedRun: ...

        async def record_start(self, run: PreparedRun) -> None: ...

        async def execute(
            self, run: PreparedRun, budget: Budget, progress: ProgressSink | None = None
        ) -> RunResult: ...

    async def run(self, request: RunRequest, hooks: RunHooks) -> RunOutcome:
        """Check, budget, admit, prepare, record and execute one call (the order in the module
        docstring). Refusals come back in the outcome, never raised; a cancelled run propagates."""
        stopwatch = Stopwatch()
        try:
            request = hooks.controls(request)
            spawn = hooks.spawner() if request.background else None
            if request.background and spawn is None:
                raise InputError("this caller cannot start background runs")
            inputs = self.check(request.kind, request.name, request.inputs, method=request.method)
            budget = self.run_budget(request)
            slot = await hooks.admit(request, budget)
        except ReasonKitError as exc:
            return self._refuse(request, exc, stopwatch)
        handed_off = False
        try:
            provider = hooks.provider(request)
            run = self.prepare(
                request.kind,
                request.name,
                inputs,
                provider,
                method=request.method,
                background=request.background,
            )
            await hooks.prepared(run, budget)
            replay = await hooks.repeat_of(request, inputs, run)
            if replay is not None:
                return RunOutcome(run, budget, replay=replay)
            if spawn is not None:
                await self.record_start(run)  # run_result must find it at once
                self.live[run.result.run_id] = run.live
                spawn(lambda: self._execute(run, budget, hooks, slot))
                handed_off = True
                count_request(self.metrics, request.method, request.name, "running", stopwatch.seconds)
                return RunOutcome(run, budget, background=True)
            await self._execute(run, budget, hooks)
            return RunOutcome(run, budget)
        except ReasonKitError as exc:
            return self._refuse(request, exc, stopwatch)
        finally:
            if not handed_off:
                slot.release()

    def run_budget(self, request: RunRequest) -> Budget:
        """The budget of a request: a background run's own, else what it asked for, capped by its
        deadline."""
        if request.background:
            return background_budget(self.settings, request.deadline)
        return self.budget(request.budget, deadline=request.deadline)

    async def _execute(self, run: PreparedRun, budget: Budget, hooks: RunHooks, slot: Slot = NO_SLOT) -> None:
        hooks.started(run)
        try:
            await self.execute(run, budget, None if run.live.background else hooks.progress(run.live))
        finally:
            hooks.ended(run)
            slot.release()

    def _refuse(self, request: RunRequest, exc: ReasonKitError, stopwatch: Stopwatch) -> RunOutcome:
        count_request(self.metrics, request.method, request.name, "error", stopwatch.seconds)
        return RunOutcome(refusal=exc)
