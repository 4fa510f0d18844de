"""One ThinkTool call's part in `RunService.run` (reasonkit/run_request.py): the hooks the MCP
server adds around the run service's path (`ToolCall`), and the control inputs every ThinkTool
takes. Apart from tools.py (tool listing and dispatch) so each says one thing."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger
from mcp.server.context import ServerRequestContext

from reasonkit.errors import Busy, InputError, NoProviderConfigured, ReasonKitError, StoreError
from reasonkit.live_runs import LiveRun
from reasonkit.protocol.inputs import background_flag
from reasonkit.run_request import ProgressSink, RunHooks, RunRequest, Slot, Spawn
from reasonkit.server.capacity.run_slots import claim_ticket, client_key, principal_of
from reasonkit.server.mcp import schemas, tasks
from reasonkit.server.mcp.confirm import confirm_run
from reasonkit.server.mcp.idempotency import fingerprint, pop_key
from reasonkit.server.mcp.runtime import Runtime

if TYPE_CHECKING:  # the engine loads at the first tools/call, not at start-up
    import mcp_types as types

    from reasonkit.engine import Budget, Event
    from reasonkit.live_runs import PreparedRun
    from reasonkit.principal import Principal
    from reasonkit.providers.base import Provider
    from reasonkit.server.mcp.core import ServerCore
    from reasonkit.server.mcp.idempotency import IdempotentCalls
    from reasonkit.server.mcp.tasks import TaskHandlers


class Handlers(Protocol):
    """What a call uses of the tool handlers (server/mcp/tools.py `ToolHandlers`): the server's core,
    the idempotency keys and `run_result` for a repeat (a protocol, so the two modules import one way)."""

    core: ServerCore
    idempotency: IdempotentCalls
    tasks: TaskHandlers

    async def run_result(self, args: dict[str, Any], viewer: Principal) -> types.CallToolResult: ...


def control_args(args: dict[str, Any]) -> tuple[float | None, bool]:
    """Pop the control inputs every ThinkTool takes: `deadline_s` and `background`."""
    raw_deadline = args.pop("deadline_s", None)
    raw_background = args.pop("background", None)
    deadline: float | None = None
    if raw_deadline is not None and raw_deadline != "":
        try:
            if isinstance(raw_deadline, bool):
                raise ValueError
            deadline = float(raw_deadline)
        except (TypeError, ValueError):
            raise InputError(
                f"input 'deadline_s' must be a number of seconds, got {str(raw_deadline)[:40]!r}"
            ) from None
        if not 0 < deadline <= schemas.MAX_DEADLINE_S:
            raise InputError(
                f"input 'deadline_s' must be > 0 and <= {schemas.MAX_DEADLINE_S:g}, got {deadline:g}"
            )
    return deadline, background_flag(raw_background)


class ToolCall(RunHooks):
    """What the MCP server adds around one ThinkTool run (reasonkit/run_request.py): the control
    inputs, admission, the provider (client sampling or the configured one), idempotency keys, the
    background task group, progress notifications and the drain count."""

    def __init__(self, handlers: Handlers, ctx: ServerRequestContext[Runtime], tool: str):
        self.handlers = handlers
        self.core = handlers.core
        self.ctx = ctx
        self.runtime: Runtime = ctx.lifespan_context
        self.principal = principal_of(ctx)  # the run's owner
        self.key: str | None = None  # idempotency_key
        self.budget: Budget | None = None
        self.task = False  # answered with a task handle (server/mcp/tasks.py)
        self.log = logger.bind(request_id=str(ctx.request_id), tool=tool, profile=tool)

    def controls(self, request: RunRequest) -> RunRequest:
        args = dict(request.inputs)
        key = pop_key(args)
        deadline, background = control_args(args)
        target = self._target(request, args)
        self.key = key
        self.log = self.log.bind(profile=target)
        default = self.core.deadlines.get(target, self.core.deadline)
        if self.handlers.tasks.available() and tasks.declared(self.ctx):
            expected = tasks.expected_secs(self.core, target)
            self.task = tasks.wants_task(background, expected, deadline or default)
            if self.task:  # a background run with a handle, given the time its estimate asks for
                deadline = deadline or tasks.task_deadline(expected, default)
                return replace(request, name=target, inputs=args, deadline=deadline, background=True)
        if not background:  # a foreground run ends by the tool deadline; a background one has its own
            deadline = deadline or default
        return replace(request, name=target, inputs=args, deadline=deadline, background=background)

    def _target(self, request: RunRequest, args: dict[str, Any]) -> str:
        if request.kind == "protocol":
            return request.name
        profiles = self.core.registry.profiles
        profile = args.pop("profile", None) or self.core.settings.engine.default_profile
        if not isinstance(profile, str) or profile not in profiles:
            raise InputError(
                f"input 'profile' must be one of {', '.join(sorted(profiles))}, got {str(profile)[:40]!r}"
            )
        return profile

    async def admit(self, request: RunRequest, budget: Budget) -> Slot:
        """Admission control (reasonkit/server/capacity/run_slots.py): a slot until the run ends."""
        core = self.core
        if request.background and core.status.draining:
            raise Busy(
                "the server is shutting down and does not start background runs; retry on another instance",
                "draining",
                0,
            )
        return claim_ticket(self.ctx) or await core.admission.admit(
            client_key(self.ctx),
            background=request.background,
            deadline=budget.seconds or core.deadline,
            capped=not self.principal.admin,
        )

    def provider(self, request: RunRequest) -> Provider:
        choice = self.runtime.choose_provider(self.ctx.session, self.ctx.request_id, request.background)
        if choice.provider is None:
            raise NoProviderConfigured(choice.error or "no LLM provider is available")
        return choice.provider

    async def prepared(self, run: PreparedRun, budget: Budget) -> None:
        self.budget = budget
        run.result.owner = self.principal.name
        if not run.live.background:  # only the client ends a plain call early (a deadline is no cancel)
            run.cancel_reason = "the client cancelled the call or disconnected"
        self.log = self.log.bind(run_id=run.result.run_id)
        await confirm_run(self.ctx, self.core, run)  # [server] confirm_above_usd (server/mcp/confirm.py)

    async def repeat_of(self, request: RunRequest, inputs: dict[str, Any], run: PreparedRun) -> object:
        """A repeat of an `idempotency_key` gets the first run's result (waiting while it runs)."""
        if self.key is None:
            return None
        handlers, client = self.handlers, f"principal:{self.principal.name}"
        first = await handlers.idempotency.claim(
            client, self.key, fingerprint(request.method, request.name, inputs), run
        )
        if first is None:
            return None
        self.log.info("repeat of run {} (idempotency_key)", first)
        wait = None if request.background else (self.budget and self.budget.seconds) or self.core.deadline
        return await handlers.idempotency.result_of(first, wait) or await handlers.run_result(
            {"run_id": first}, self.principal
        )

    def progress(self, live: LiveRun) -> ProgressSink:
        """notifications/progress for the caller: one per finished step (values must increase: an
        item of a for_each step moves halfway towards the next step). Every message names the run,
        the first one too ("started laserlogic as run <id>"), so a client whose own timeout ends the
        call can still fetch the run with `run_result`. A client that went away does not break the
        run."""
        session = self.ctx.session
        run_id, name = live.result.run_id, live.result.name
        sent = -1.0

        async def progress(event: Event) -> None:
            nonlocal sent
            described = live.describe(event)
            if described is None:
                return
            value, message = described
            message = (
                f"started {name} as run {run_id}"
                if event.type == "run_started"
                else f"{message} [run {run_id}]"
            )
            if event.type == "step_finished" and event.item is not None:
                value = sent + (int(sent) + 1 - sent) / 2 if sent >= 0 else 0.5
            if value <= sent:
                return
            sent = value
            total = float(live.total) if live.total else None
            try:
                await session.report_progress(value, total, message)
            except Exception as exc:  # noqa: BLE001 - a client that went away must not break the run
                logger.debug("progress notification failed: {}", exc)

        return progress

    def spawner(self) -> Spawn:
        task_group = self.runtime.tg  # the server's: background runs outlive the call

        def spawn(job: Callable[[], Coroutine[Any, Any, Any]]) -> None:
            task_group.start_soon(job)

        return spawn

    def started(self, run: PreparedRun) -> None:
        self.core.status.begin(run)

    def ended(self, run: PreparedRun) -> None:
        self.core.status.end(run)

    def log_refusal(self, exc: ReasonKitError) -> None:
        if isinstance(exc, NoProviderConfigured):
            self.log.warning("no provider: {}", str(exc).splitlines()[0])
        elif isinstance(exc, StoreError):
            self.log.error("cannot record the run: {}", exc)
        elif isinstance(exc, InputError):
            self.log.info("rejected arguments: {}", exc)
        else:
            self.log.info("refused: {}", exc)
