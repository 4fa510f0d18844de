"""The MCP tools: one per protocol, `think` (a profile) and `run_result`. A ThinkTool call is one
`RunService.run` (reasonkit/run_request.py) with this server's hooks (`ToolCall`: the control
inputs, the tool deadline, admission, the provider, idempotency, progress notifications, background
task groups); the handler renders its outcome."""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from reasonkit.errors import ConfirmationPending, InputError, StoreError
from reasonkit.observability.metrics import Stopwatch
from reasonkit.principal import Principal
from reasonkit.protocol.inputs import parse_flag
from reasonkit.run_request import RunKind, RunRequest, count_request
from reasonkit.server.capacity.run_slots import principal_of
from reasonkit.server.mcp import confirm, rendering, schemas
from reasonkit.server.mcp.core import ServerCore
from reasonkit.server.mcp.estimates import Pace, deadline_for, pace_for, profile_estimate, protocol_estimate
from reasonkit.server.mcp.idempotency import IdempotentCalls
from reasonkit.server.mcp.runtime import Runtime
from reasonkit.server.mcp.tasks import TaskHandlers
from reasonkit.server.mcp.tool_call import ToolCall


def default_deadlines(core: ServerCore, pace: Pace) -> dict[str, float]:
    """Each protocol's and profile's default deadline on the configured provider (estimates.py)."""
    registry, configured = core.registry, core.settings.server.tool_deadline_secs
    found = {
        p.id: deadline_for(protocol_estimate(p, pace), pace, configured) for p in core.protocols.values()
    }
    for profile in registry.profiles.values():
        found[profile.id] = deadline_for(profile_estimate(profile, registry, pace), pace, configured)
    return found


def build_tools(core: ServerCore) -> list[types.Tool]:
    """The tools for `tools/list`: those `[server] tools` selects (all by default); ConfigError for a
    name that is not a tool. Sets `core.deadlines`, which the descriptions state."""
    registry, pace = core.registry, pace_for(core.settings)
    deadlines = core.deadlines = default_deadlines(core, pace)
    exposed = schemas.exposed_tools(core.settings.server.tools, registry)
    tools = [
        types.Tool(
            name=p.id,
            title=p.name,
            description=schemas.protocol_description(p, deadlines[p.id], pace),
            input_schema=schemas.protocol_input_schema(p, deadlines[p.id]),
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
                description=schemas.think_description(profiles, registry, deadlines, pace),
                input_schema=schemas.think_input_schema(profiles, default_profile, None),
                output_schema=schemas.OUTPUT_SCHEMA,
                annotations=schemas.THINKTOOL_ANNOTATIONS,
            )
        )
    if schemas.RUN_RESULT_TOOL in exposed:
        tools.append(
            types.Tool(
                name=schemas.RUN_RESULT_TOOL,
                title="ReasonKit run result",
                description=schemas.run_result_description(),
                input_schema=schemas.RUN_RESULT_INPUT_SCHEMA,
                output_schema=schemas.OUTPUT_SCHEMA,
                annotations=schemas.RUN_RESULT_ANNOTATIONS,
            )
        )
    return tools


class ToolHandlers:
    """tools/list and tools/call for a `ServerCore`."""

    def __init__(self, core: ServerCore):
        self.core = core
        self.idempotency = IdempotentCalls(core.service)  # `idempotency_key` (server/mcp/idempotency.py)
        self.tasks = TaskHandlers(core)  # the tasks extension (server/mcp/tasks.py)

    async def list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.core.tools)

    async def call_tool(
        self, ctx: ServerRequestContext[Runtime], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult | dict[str, Any]:
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
            result = await self.run_result(args, principal_of(ctx))
            count_request(core.metrics, name, "", "error" if result.is_error else "ok", stopwatch.seconds)
            return result
        count_request(core.metrics, "tools/call", "", "error", 0.0)
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}", data={"tool": name})

    async def run_tool(
        self, ctx: ServerRequestContext[Runtime], name: str, kind: RunKind, args: dict[str, Any]
    ) -> types.CallToolResult | types.InputRequiredResult | dict[str, Any]:
        """A ThinkTool call: one `RunService.run` with this server's hooks, its outcome rendered (a
        `CreateTaskResult` when the call became a task: server/mcp/tasks.py; an input request when
        the user must confirm the cost first: server/mcp/confirm.py)."""
        core = self.core
        call = ToolCall(self, ctx, name)
        outcome = await core.service.run(RunRequest(kind, name, args, method=name), call)
        if isinstance(outcome.refusal, ConfirmationPending):  # 2026-07-28: ask the user first
            return confirm.input_required(outcome.refusal)
        if outcome.refusal is not None:
            call.log_refusal(outcome.refusal)
            return rendering.error_result(str(outcome.refusal))
        if isinstance(outcome.replay, types.CallToolResult):
            return outcome.replay
        run, budget = outcome.run, outcome.budget
        assert run is not None and budget is not None
        if outcome.background and call.task:
            call.log.info("started as a task (deadline {:g}s)", budget.seconds or 0)
            return await self.tasks.create(call.principal, run.live, budget.seconds or 0)
        if outcome.background:
            call.log.info("started in the background (deadline {:g}s)", budget.seconds or 0)
            return rendering.background_started(run.live, name, budget.seconds or 0)
        result = run.result
        if run.crashed:
            return rendering.error_result(
                f"the run failed with an internal error; see the server log (run {result.run_id})"
            )
        from reasonkit.server.http.run_pages import run_page_url  # starlette + the HTTP middleware

        return rendering.tool_result(result, link=run_page_url(core, result.run_id))

    # ------------------------------------------------------------------ run_result
    async def run_result(self, args: dict[str, Any], viewer: Principal) -> types.CallToolResult:
        """The result or progress of a run `viewer` may see; another principal's run is answered
        as an unknown one."""
        unknown = sorted(set(args) - {"run_id", "cancel"})
        if unknown:
            names = ", ".join(repr(u) for u in unknown)
            return rendering.error_result(f"run_result has no input {names} (inputs: run_id, cancel)")
        run_id = args.get("run_id")
        if not isinstance(run_id, str) or not run_id.strip():
            return rendering.error_result("input 'run_id' is required: the run_id a ThinkTool call returned")
        try:
            cancel = parse_flag(args.get("cancel") or False, "cancel")
        except InputError as exc:
            return rendering.error_result(str(exc))
        run_id = run_id.strip()
        service = self.core.service
        live = service.live_run(run_id, viewer)
        try:
            if live is not None:
                if cancel:
                    await self.tasks.cancel_run(run_id)
                    return rendering.running_result(live, "Cancel requested; call run_result again.")
                return rendering.running_result(live)
            trace = await service.stored_trace(run_id, viewer)
            if cancel and trace is not None and trace.get("status") == "running":
                await self.tasks.cancel_run(run_id)  # the replica running it stops it within seconds
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
            if cancel:
                summary["message"] = "Cancel requested; the process running it stops it within seconds."
                message = f"Cancel requested for run `{run_id}`; call `run_result` again to see it stopped."

            return rendering.text_result(message, summary)
        return rendering.text_result(text, summary)
