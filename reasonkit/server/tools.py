"""The MCP tools: one per protocol, `think` (a profile) and `run_result`. A ThinkTool call is one
`RunService.run` (reasonkit/run_request.py) with this server's hooks (`ToolCall`: the control
inputs, the tool deadline, admission, the provider, idempotency, progress notifications, background
task groups); the handler renders its outcome."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import mcp_types as types
from loguru import logger
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from reasonkit.errors import InputError, NoProviderConfigured, ReasonKitError, StoreError
from reasonkit.live_runs import LiveRun
from reasonkit.observability.metrics import Stopwatch
from reasonkit.protocol.inputs import parse_flag
from reasonkit.run_request import (
    ProgressSink,
    RunHooks,
    RunKind,
    RunRequest,
    Slot,
    Spawn,
    count_request,
)
from reasonkit.server import rendering, schemas
from reasonkit.server.admission import Busy, claim_ticket, client_key
from reasonkit.server.core import ServerCore
from reasonkit.server.idempotency import IdempotentCalls, fingerprint, pop_key
from reasonkit.server.runtime import Runtime

if TYPE_CHECKING:  # the engine (and the HTTP run pages) load at the first tools/call, not at start-up
    from reasonkit.engine import Budget, Event
    from reasonkit.providers.base import Provider
    from reasonkit.runs import PreparedRun


def build_tools(core: ServerCore) -> list[types.Tool]:
    """The tools for `tools/list`: those `[server] tools` selects (all by default); ConfigError for a
    name that is not a tool."""
    deadline, registry = core.deadline, core.registry
    exposed = schemas.exposed_tools(core.settings.server.tools, registry)
    tools = [
        types.Tool(
            name=p.id,
            title=p.name,
            description=schemas.protocol_description(p, deadline),
            input_schema=schemas.protocol_input_schema(p, deadline),
            output_schema=schemas.OUTPUT_SCHEMA,
            annotations=schemas.THINKTOOL_ANNOTATIONS,
        )
        for p in core.protocols.values()
        if p.id in exposed
    ]
    profiles = registry.profiles
    if profiles and schemas.THINK_TOOL in exposed:
        default_profile = core.settings.engine.default_profile
        tools.append(
            types.Tool(
                name=schemas.THINK_TOOL,
                title="ReasonKit think",
                description=schemas.think_description(profiles, registry, deadline),
                input_schema=schemas.think_input_schema(profiles, default_profile, deadline),
                output_schema=schemas.OUTPUT_SCHEMA,
                annotations=schemas.THINKTOOL_ANNOTATIONS,
            )
        )
    if schemas.RUN_RESULT_TOOL in exposed:
        tools.append(
            types.Tool(
                name=schemas.RUN_RESULT_TOOL,
                title="ReasonKit run result",
                description=schemas.run_result_description(deadline),
                input_schema=schemas.RUN_RESULT_INPUT_SCHEMA,
                output_schema=schemas.OUTPUT_SCHEMA,
                annotations=schemas.RUN_RESULT_ANNOTATIONS,
            )
        )
    return tools


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
    background = False
    if raw_background is not None and raw_background != "":
        background = parse_flag(raw_background, "background")
    return deadline, background


class ToolCall(RunHooks):
    """What the MCP server adds around one ThinkTool run (reasonkit/run_request.py): the control
    inputs, admission, the provider (client sampling or the configured one), idempotency keys, the
    background task group, progress notifications and the drain count."""

    def __init__(self, handlers: ToolHandlers, ctx: ServerRequestContext[Runtime], tool: str):
        self.handlers = handlers
        self.core = handlers.core
        self.ctx = ctx
        self.runtime: Runtime = ctx.lifespan_context
        self.key: str | None = None  # idempotency_key
        self.budget: Budget | None = None
        self.log = logger.bind(request_id=str(ctx.request_id), tool=tool, profile=tool)

    def controls(self, request: RunRequest) -> RunRequest:
        args = dict(request.inputs)
        key = pop_key(args)
        deadline, background = control_args(args)
        target = self._target(request, args)
        self.key = key
        self.log = self.log.bind(profile=target)
        if not background:  # a foreground run ends by the tool deadline; a background one has its own
            deadline = deadline or self.core.deadline
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
        """Admission control (reasonkit/server/admission.py): a slot until the run ends."""
        core = self.core
        if request.background and core.status.draining:
            raise Busy(
                "the server is shutting down and does not start background runs; retry on another instance",
                "draining",
                0,
            )
        return claim_ticket(self.ctx) or await core.admission.admit(
            client_key(self.ctx), background=request.background, deadline=budget.seconds or core.deadline
        )

    def provider(self, request: RunRequest) -> Provider:
        choice = self.runtime.choose_provider(self.ctx.session, self.ctx.request_id, request.background)
        if choice.provider is None:
            raise NoProviderConfigured(choice.error or "no LLM provider is available")
        return choice.provider

    async def prepared(self, run: PreparedRun, budget: Budget) -> None:
        self.budget = budget
        self.log = self.log.bind(run_id=run.result.run_id)

    async def repeat_of(self, request: RunRequest, inputs: dict[str, Any], run: PreparedRun) -> object:
        """A repeat of an `idempotency_key` gets the first run's result (waiting while it runs)."""
        if self.key is None:
            return None
        handlers, client = self.handlers, client_key(self.ctx)
        first = await handlers.idempotency.claim(
            client, self.key, fingerprint(request.method, request.name, inputs), run
        )
        if first is None:
            return None
        self.log.info("repeat of run {} (idempotency_key)", first)
        wait = None if request.background else (self.budget and self.budget.seconds) or self.core.deadline
        return await handlers.idempotency.result_of(first, wait) or await handlers.run_result(
            {"run_id": first}
        )

    def progress(self, live: LiveRun) -> ProgressSink:
        """notifications/progress for the caller: one per finished step (values must increase: an
        item of a for_each step moves halfway towards the next step). A client that went away does
        not break the run."""
        session = self.ctx.session
        sent = -1.0

        async def progress(event: Event) -> None:
            nonlocal sent
            described = live.describe(event)
            if described is None:
                return
            value, message = described
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


class ToolHandlers:
    """tools/list and tools/call for a `ServerCore`."""

    def __init__(self, core: ServerCore):
        self.core = core
        self.idempotency = IdempotentCalls(core.service)  # `idempotency_key` (server/idempotency.py)

    async def list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.core.tools)

    async def call_tool(
        self, ctx: ServerRequestContext[Runtime], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        core = self.core
        name = params.name
        args = dict(params.arguments or {})
        kind: RunKind | None = None
        if name == schemas.THINK_TOOL and core.registry.profiles:
            kind = "profile"
        elif name in core.protocols:
            kind = "protocol"
        exposed = any(t.name == name for t in core.tools)  # not loaded, or left out by [server] tools
        if kind is not None and exposed:
            return await self.run_tool(ctx, name, kind, args)  # a run counts itself (run_request.py)
        if name == schemas.RUN_RESULT_TOOL and exposed:
            stopwatch = Stopwatch()
            result = await self.run_result(args)
            count_request(core.metrics, name, "", "error" if result.is_error else "ok", stopwatch.seconds)
            return result
        count_request(core.metrics, "tools/call", "", "error", 0.0)
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}", data={"tool": name})

    async def run_tool(
        self, ctx: ServerRequestContext[Runtime], name: str, kind: RunKind, args: dict[str, Any]
    ) -> types.CallToolResult:
        """A ThinkTool call: one `RunService.run` with this server's hooks, its outcome rendered."""
        core = self.core
        call = ToolCall(self, ctx, name)
        outcome = await core.service.run(RunRequest(kind, name, args, method=name), call)
        if outcome.refusal is not None:
            call.log_refusal(outcome.refusal)
            return rendering.error_result(str(outcome.refusal))
        if isinstance(outcome.replay, types.CallToolResult):
            return outcome.replay
        run, budget = outcome.run, outcome.budget
        assert run is not None and budget is not None
        if outcome.background:
            call.log.info("started in the background (deadline {:g}s)", budget.seconds or 0)
            return rendering.background_started(run.live, name, budget.seconds or 0)
        result = run.result
        if run.crashed:
            return rendering.error_result(
                f"the run failed with an internal error; see the server log (run {result.run_id})"
            )
        from reasonkit.server.run_pages import run_page_url  # starlette + the HTTP middleware

        return rendering.tool_result(result, link=run_page_url(core, result.run_id))

    # ------------------------------------------------------------------ run_result
    async def run_result(self, args: dict[str, Any]) -> types.CallToolResult:
        unknown = sorted(set(args) - {"run_id"})
        if unknown:
            names = ", ".join(repr(u) for u in unknown)
            return rendering.error_result(f"run_result has no input {names} (inputs: run_id)")
        run_id = args.get("run_id")
        if not isinstance(run_id, str) or not run_id.strip():
            return rendering.error_result("input 'run_id' is required: the run_id a ThinkTool call returned")
        run_id = run_id.strip()
        service = self.core.service
        live = service.live_run(run_id)
        if live is not None:
            return rendering.running_result(live)
        try:
            trace = await service.stored_trace(run_id)
        except StoreError as exc:
            return rendering.error_result(str(exc))
        if trace is None:
            where = "runs are kept in the run store; see `rk runs list`"
            if service.store is None:
                where = "this server does not save runs: [storage] save_runs = false"
            return rendering.error_result(f"no run with id '{run_id}' ({where})")
        summary, text = rendering.summary_from_trace(trace)
        if summary["status"] == "running":
            summary["message"] = (
                "The run is still going in another server process; call run_result again later."
            )
            message = (
                f"Run `{run_id}` is still running in another server process; call `run_result` again later."
            )
            return rendering.text_result(message, summary)
        return rendering.text_result(text, summary)
