"""The MCP tools: one per protocol, `think` (a profile) and `run_result`. The handlers turn MCP
arguments into a run-service request, pick the provider, apply the tool deadline, run in the
foreground (with progress notifications) or in the background, and render the result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mcp_types as types
from loguru import logger
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from reasonkit.errors import InputError, StoreError
from reasonkit.observability.metrics import Stopwatch
from reasonkit.protocol.inputs import parse_flag
from reasonkit.runs import LiveRun, PreparedRun
from reasonkit.server.capacity.run_slots import Busy, claim_ticket, client_key
from reasonkit.server.mcp import rendering, schemas
from reasonkit.server.mcp.core import ServerCore
from reasonkit.server.mcp.idempotency import IdempotentCalls, fingerprint, pop_key
from reasonkit.server.mcp.runtime import Runtime

if TYPE_CHECKING:  # the engine (and the HTTP run pages) load at the first tools/call, not at start-up
    from reasonkit.engine import Budget, Event

BACKGROUND_DEFAULT_SECS = 600.0


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
        if not any(t.name == name for t in core.tools):  # not loaded, or left out by [server] tools
            core.metrics.observe_request("tools/call", "", "error", 0.0)
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}", data={"tool": name})
        if name == schemas.RUN_RESULT_TOOL:
            stopwatch = Stopwatch()
            result = await self.run_result(args)
            core.metrics.observe_request(name, "", "error" if result.is_error else "ok", stopwatch.seconds)
            return result
        if name == schemas.THINK_TOOL and core.registry.profiles:
            return await self.run_tool(ctx, name, "profile", args)
        if name in core.protocols:
            return await self.run_tool(ctx, name, "protocol", args)
        core.metrics.observe_request("tools/call", "", "error", 0.0)
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}", data={"tool": name})

    def _target(self, name: str, kind: str, args: dict[str, Any]) -> str:
        if kind == "protocol":
            return name
        profiles = self.core.registry.profiles
        profile = args.pop("profile", None) or self.core.settings.engine.default_profile
        if not isinstance(profile, str) or profile not in profiles:
            raise InputError(
                f"input 'profile' must be one of {', '.join(sorted(profiles))}, got {str(profile)[:40]!r}"
            )
        return profile

    def _budget(self, deadline: float | None, background: bool) -> Budget:
        core = self.core
        if background:
            engine = core.settings.engine
            seconds = deadline or engine.budget_secs or BACKGROUND_DEFAULT_SECS
            from reasonkit.engine import Budget

            return Budget(seconds=seconds, tokens=engine.budget_tokens, usd=engine.budget_usd)
        return core.service.budget(None, deadline=deadline or core.deadline)

    async def run_tool(
        self, ctx: ServerRequestContext[Runtime], name: str, kind: Any, args: dict[str, Any]
    ) -> types.CallToolResult:
        core = self.core
        stopwatch = Stopwatch()
        runtime: Runtime = ctx.lifespan_context
        label = name
        log = logger.bind(request_id=str(ctx.request_id), tool=name)

        def refuse(message: str) -> types.CallToolResult:
            core.metrics.observe_request(name, label, "error", stopwatch.seconds)
            return rendering.error_result(message)

        try:
            key = pop_key(args)
            deadline, background = control_args(args)
            label = target = self._target(name, kind, args)
            clean = core.service.check(kind, target, args, method=name)
        except InputError as exc:
            log.bind(profile=label).info("rejected arguments: {}", exc)
            return refuse(str(exc))
        if background and core.status.draining:
            return refuse(
                "the server is shutting down and does not start background runs; retry on another instance"
            )
        budget = self._budget(deadline, background)
        try:  # admission control (reasonkit/server/admission.py): a slot until the run ends
            ticket = claim_ticket(ctx) or await core.admission.admit(
                client_key(ctx), background=background, deadline=budget.seconds or core.deadline
            )
        except Busy as exc:
            log.bind(profile=label).info("refused: {}", exc)
            return refuse(str(exc))
        handed_off = False
        try:
            choice = runtime.choose_provider(ctx.session, ctx.request_id, background)
            if choice.provider is None:
                error = choice.error or "no LLM provider is available"
                log.bind(profile=label).warning("no provider: {}", error.splitlines()[0])
                return refuse(error)
            run = core.service.prepare(
                kind, target, clean, choice.provider, method=name, background=background
            )
            log = log.bind(profile=label, run_id=run.result.run_id)
            if key is not None:  # a repeat gets the first run's result (waits while it runs)
                try:
                    first = await self.idempotency.claim(
                        client_key(ctx), key, fingerprint(name, target, clean), run
                    )
                except (InputError, StoreError) as exc:
                    return refuse(str(exc))
                if first is not None:
                    log.info("repeat of run {} (idempotency_key)", first)
                    wait = None if background else budget.seconds or core.deadline
                    return await self.idempotency.result_of(first, wait) or await self.run_result(
                        {"run_id": first}
                    )
            if background:
                try:
                    await core.service.record_start(run)
                except StoreError as exc:
                    log.error("cannot record the run: {}", exc)
                    return refuse(str(exc))
                core.service.live[run.result.run_id] = run.live
                runtime.tg.start_soon(self._execute, run, budget, None, ticket)
                handed_off = True
                core.metrics.observe_request(name, label, "running", stopwatch.seconds)
                log.info("started in the background (deadline {:g}s)", budget.seconds or 0)
                return rendering.background_started(run.live, name, budget.seconds or 0)
            result = await self._execute(run, budget, self._progress_sink(ctx, run.live))
        finally:
            if not handed_off:
                ticket.release()
        if run.crashed:
            return rendering.error_result(
                f"the run failed with an internal error; see the server log (run {result.run_id})"
            )
        from reasonkit.server.http.run_pages import run_page_url  # starlette + the HTTP middleware

        return rendering.tool_result(result, link=run_page_url(core, result.run_id))

    async def _execute(self, run: PreparedRun, budget: Budget, progress: Any, ticket: Any = None) -> Any:
        status = self.core.status
        status.begin(run)
        try:
            return await self.core.service.execute(run, budget, progress)
        finally:
            status.end(run)
            if ticket is not None:
                ticket.release()

    @staticmethod
    def _progress_sink(ctx: ServerRequestContext[Runtime], live: LiveRun) -> Any:
        """notifications/progress for the caller: one per finished step (values must increase: an
        item of a for_each step moves halfway towards the next step). A client that went away does
        not break the run."""
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
                await ctx.session.report_progress(value, total, message)
            except Exception as exc:  # noqa: BLE001 - a client that went away must not break the run
                logger.debug("progress notification failed: {}", exc)

        return progress

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
