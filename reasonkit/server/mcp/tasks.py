"""The MCP tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) on the 2026-07-28 wire: a
ThinkTool call that would outlast its client's patience returns a task handle (`CreateTaskResult`)
instead of blocking, and the client polls `tasks/get` until the inlined `CallToolResult` is there.

When a call becomes a task (`wants_task`): only when the request's own client capabilities declare
the extension (never otherwise: those clients keep `background` + `run_result`), the server keeps
runs (a task is read from the run store), and either the call asks for `background: true` or its
slow estimate (server/mcp/estimates.py) is over `TASK_AFTER_S` or over the call's deadline. A task
without `deadline_s` runs as long as its estimate asks (`task_deadline`).
`TASK_AFTER_S` is what a client with a ~60 s timeout can wait for (`MIN_DEADLINE_S`): a call
expected to take longer would otherwise end in the client's timeout, not in an answer.

A task is a handle on a background run (reasonkit/store/tasks.py): its state is the run's, read from
the run store, so any replica sharing the store answers `tasks/get`, and `tasks/cancel` on any
replica records a cancel request that the replica executing the run notices within
`CANCEL_POLL_SECS` (`CancelWatch`, a poll of the store while it has runs in progress). Task ids are
`secrets.token_urlsafe(24)` (192 random bits); a task belongs to the principal that made it, and
another principal's task reads exactly like an unknown id. Nothing is kept in `requestState`: no
multi-round-trip input is asked for, so there is nothing for a client to echo or forge.
`tasks/get`, `tasks/cancel` and `tasks/update` from a request that does not declare the extension
are refused with -32021 (`missing_extension`), as SEP-2663 asks, and one whose `Mcp-Name` header
names another task with -32020 (`check_routing`). A run the engine crashed on is a
`failed` task with an `error` (a protocol-level error); a run whose steps failed is a `completed`
task whose `result` has `isError` (a tool error).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from loguru import logger
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import decode_header_value
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict, Field

from reasonkit.errors import StoreError
from reasonkit.principal import Principal
from reasonkit.server.capacity.run_slots import principal_of
from reasonkit.server.mcp import rendering
from reasonkit.server.mcp.estimates import (
    DEADLINE_MARGIN,
    MIN_DEADLINE_S,
    pace_for,
    profile_estimate,
    protocol_estimate,
)
from reasonkit.server.mcp.schemas import MAX_DEADLINE_S

if TYPE_CHECKING:
    from mcp.server import Server

    from reasonkit.live_runs import LiveRun
    from reasonkit.runs import RunService
    from reasonkit.server.mcp.core import ServerCore
    from reasonkit.store.tasks import TaskRow

EXTENSION = "io.modelcontextprotocol/tasks"
#: A call expected to take longer than this becomes a task (for a client that declares the extension).
TASK_AFTER_S = MIN_DEADLINE_S
#: How long a task is kept at least (its run stays in the run store for as long as retention says).
TASK_TTL_SECS = 3600.0
#: What clients are told to wait between two `tasks/get`.
POLL_INTERVAL_MS = 2000
#: How often a replica with runs in progress looks for cancel requests made on another replica.
CANCEL_POLL_SECS = 2.0
CANCEL_REASON = "cancelled on request (tasks/cancel, or run_result with cancel)"


class TaskParams(types.RequestParams):
    """`tasks/get` and `tasks/cancel`: the task's id."""

    model_config = ConfigDict(populate_by_name=True)
    task_id: str = Field(alias="taskId", min_length=1, max_length=200)


class UpdateTaskParams(TaskParams):
    """`tasks/update`: the task's id and the client's answers to outstanding input requests."""

    input_responses: dict[str, Any] = Field(alias="inputResponses")


def declared(ctx: ServerRequestContext[Any]) -> bool:
    """Whether this request's client capabilities declare the extension (2026-07-28 wire only:
    SEP-2663 does not apply to the handshake era)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    extensions = capabilities.extensions if capabilities is not None else None
    return bool(extensions) and EXTENSION in (extensions or {})


def expected_secs(core: ServerCore, target: str) -> float:
    """The slow estimate of a call of `target` (a protocol or a profile) on the configured provider."""
    pace = pace_for(core.settings)
    proto = core.protocols.get(target)
    if proto is not None:
        return float(protocol_estimate(proto, pace).seconds(pace)[1])
    profile = core.registry.profiles[target]
    return float(profile_estimate(profile, core.registry, pace).seconds(pace)[1])


def wants_task(background: bool, expected: float, deadline: float | None) -> bool:
    """The rule (module docstring): asked for in the background, or expected to outlast the call's
    deadline or `TASK_AFTER_S`."""
    limit = min(deadline, TASK_AFTER_S) if deadline else TASK_AFTER_S
    return background or expected > limit


def task_deadline(expected: float, default: float) -> float:
    """A task's deadline when the call names none: nobody waits on a task, so it gets the time its
    slow estimate asks for (plus a tenth, as `deadline_for`), at least the tool's default deadline
    and at most `MAX_DEADLINE_S`: an embedded-model profile is not cut at the 600 s default cap."""
    return min(MAX_DEADLINE_S, max(default, float(round(expected * DEADLINE_MARGIN))))


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def missing_extension() -> MCPError:
    """SEP-2575's "Missing Required Client Capability" (-32021) naming the extension: the answer to
    `tasks/*` from a request that did not declare it (SEP-2663: the task surface is gated on it)."""
    data: dict[str, Any] = {"requiredCapabilities": {"extensions": {EXTENSION: {}}}}
    message = f"this request needs the {EXTENSION} extension in its client capabilities"
    return MCPError(code=types.MISSING_REQUIRED_CLIENT_CAPABILITY, message=message, data=data)


def check_routing(ctx: ServerRequestContext[Any], task_id: str) -> None:
    """SEP-2663's routing header: over HTTP, an `Mcp-Name` that is not the body's `taskId` is
    -32020 HeaderMismatch (HTTP 400), as the SDK answers for `tools/call`; a request without the
    header is served (clients that predate the rule do not send it)."""
    headers = getattr(ctx.request, "headers", None)
    sent = headers.get("mcp-name") if headers is not None else None
    if sent is not None and decode_header_value(sent.strip()) != task_id:
        message = "Mcp-Name header does not match the request body's 'taskId' parameter"
        raise MCPError(code=types.HEADER_MISMATCH, message=message)


def _crashed(trace: dict[str, Any]) -> bool:
    """A run the engine crashed on (`RunService.execute` records it with an `internal error` entry):
    a protocol-level error to SEP-2663, not a tool error."""
    errors = trace.get("errors") or []
    return trace.get("status") == "failed" and any(str(e).startswith("internal error: ") for e in errors)


def _not_found() -> MCPError:
    return MCPError(code=types.INVALID_PARAMS, message="Unknown task (or past its time to live)")


class TaskHandlers:
    """Task creation for the tool handlers, `tasks/get`, `tasks/cancel`, `tasks/update`, and the
    cancel of a run by id that `run_result` shares."""

    def __init__(self, core: ServerCore):
        self.core = core

    def available(self) -> bool:
        """Tasks need the run store: their state is read from it."""
        service = self.core.service
        return service.store is not None and service.settings.storage.save_runs

    async def create(self, principal: Principal, live: LiveRun, seconds: float) -> dict[str, Any]:
        """Record the task of a background run just started (durably, before the answer goes out)
        and answer with its `CreateTaskResult`; an error result (and the run stopped) when the store
        cannot take it."""
        store = self.core.service.store
        assert store is not None
        run_id = live.result.run_id
        ttl = max(TASK_TTL_SECS, 2 * seconds)
        task_id = secrets.token_urlsafe(24)
        try:
            row = await anyio.to_thread.run_sync(
                store.task_records().create, task_id, run_id, principal.name, ttl
            )
        except StoreError as exc:
            live.stop("the task could not be recorded")
            return rendering.error_result(f"the run store cannot record the task: {exc}").model_dump(
                by_alias=True, mode="json", exclude_none=True
            )
        started = f"started {live.result.name} as run {run_id}"
        return {"resultType": "task", **self._task(row, "working", row.created_at, statusMessage=started)}

    def _task(self, row: TaskRow, status: str, updated: float, **extra: Any) -> dict[str, Any]:
        return {
            "taskId": row.task_id,
            "status": status,
            "createdAt": _iso(row.created_at),
            "lastUpdatedAt": _iso(updated),
            "ttlMs": int(row.ttl_secs * 1000),
            "pollIntervalMs": POLL_INTERVAL_MS,
            **extra,
        }

    async def _find(self, ctx: ServerRequestContext[Any], task_id: str) -> TaskRow:
        """The task, if it exists and is the caller's; else the one "unknown task" error (-32021
        first for a request that did not declare the extension)."""
        if not declared(ctx):
            raise missing_extension()
        check_routing(ctx, task_id)
        store = self.core.service.store
        if store is None:
            raise _not_found()
        try:
            row = await anyio.to_thread.run_sync(store.task_records().get, task_id)
        except StoreError as exc:
            message = f"the run store cannot be read: {exc}"
            raise MCPError(code=types.INTERNAL_ERROR, message=message) from None
        if row is None or not principal_of(ctx).may_see(row.owner):
            raise _not_found()
        return row

    async def get(self, ctx: ServerRequestContext[Any], params: TaskParams) -> dict[str, Any]:
        """`tasks/get`: the task's state, from the run here or in the store."""
        row = await self._find(ctx, params.task_id)
        service = self.core.service
        live = service.live_run(row.run_id)
        if live is not None:
            return self._task(row, "working", time.time(), statusMessage=_progress(live))
        try:
            trace = await service.stored_trace(row.run_id)
        except StoreError as exc:
            raise MCPError(code=types.INTERNAL_ERROR, message=str(exc)) from None
        if trace is None:  # the run was pruned by retention before the task expired
            raise _not_found()
        return self._from_trace(row, trace)

    def _from_trace(self, row: TaskRow, trace: dict[str, Any]) -> dict[str, Any]:
        status, run_id = trace.get("status"), row.run_id
        updated = float(trace.get("finished_at") or time.time())
        reason = str(trace.get("stop_reason") or "")
        if status == "running":
            message = f"run {run_id} is running in another server process"
            return self._task(row, "working", time.time(), statusMessage=message)
        if status == "cancelled":
            return self._task(row, "cancelled", updated, statusMessage=reason or "cancelled")
        if status == "interrupted" or _crashed(trace):
            message = f"run {run_id} failed with an internal error; see the server log"
            if status == "interrupted":
                message = reason or f"run {run_id} was interrupted"
            error = {"code": types.INTERNAL_ERROR, "message": message}
            return self._task(row, "failed", updated, statusMessage=error["message"], error=error)
        result = self._result(trace)
        return self._task(row, "completed", updated, statusMessage=f"run {run_id}: {status}", result=result)

    def _result(self, trace: dict[str, Any]) -> dict[str, Any]:
        """The CallToolResult the call would have returned had it waited (tools.py `run_tool`)."""
        from reasonkit.engine import RunResult
        from reasonkit.server.http.run_pages import run_page_url  # starlette + the HTTP middleware

        try:
            run = RunResult.model_validate(trace)
            result = rendering.tool_result(run, link=run_page_url(self.core, run.run_id))
        except Exception:  # noqa: BLE001 - a trace from another version: show what is there
            summary, text = rendering.summary_from_trace(trace)
            result = rendering.text_result(text, summary)
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)

    async def cancel(self, ctx: ServerRequestContext[Any], params: TaskParams) -> dict[str, Any]:
        """`tasks/cancel`: an acknowledgement; the run stops here at once, or on the replica that
        executes it within `CANCEL_POLL_SECS`."""
        row = await self._find(ctx, params.task_id)
        await self.cancel_run(row.run_id)
        return {}

    async def update(self, ctx: ServerRequestContext[Any], params: UpdateTaskParams) -> dict[str, Any]:
        """`tasks/update`: acknowledged for a known task. No task asks for input, so every response
        is for a key that is not outstanding, which SEP-2663 says to ignore."""
        await self._find(ctx, params.task_id)
        return {}

    async def cancel_run(self, run_id: str) -> None:
        """Stop a run: at once when it executes in this process, else through a cancel request in
        the store for the replica that executes it (`CancelWatch`). Raises `StoreError`."""
        live = self.core.service.live_run(run_id)
        if live is not None and live.stop(CANCEL_REASON):
            return
        store = self.core.service.store
        if store is not None:
            await anyio.to_thread.run_sync(store.task_records().request_cancel, run_id)


def serve(server: Server[Any], handlers: TaskHandlers) -> None:
    """Advertise the extension in `server/discover` and serve its three methods on `server` (the
    product's SDK server, app.py, and the conformance test's fixture server)."""
    server.extensions[EXTENSION] = {}
    server.add_request_handler("tasks/get", TaskParams, handlers.get)
    server.add_request_handler("tasks/cancel", TaskParams, handlers.cancel)
    server.add_request_handler("tasks/update", UpdateTaskParams, handlers.update)


def _progress(live: LiveRun) -> str:
    progress = live.progress()
    total = f"/{progress['total']}" if progress["total"] else ""
    last = f"; last: {progress['last']}" if progress["last"] else ""
    done = f"{progress['done']}{total} steps done after {progress['elapsed_s']:g} s"
    return f"run {live.result.run_id}: {done}{last}"


class CancelWatch:
    """Stops this process's runs that someone asked to cancel on another replica: every `interval`
    seconds, while runs are in progress here, one query of the store's cancel requests for their
    ids (docs/operations.md says why a poll)."""

    def __init__(self, service: RunService, interval: float = CANCEL_POLL_SECS):
        self.service = service
        self.interval = interval

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            await self.once()

    async def once(self) -> int:
        """One look; returns how many runs it stopped."""
        store, live = self.service.store, self.service.live
        ids = [run_id for run_id, run in live.items() if not run.finished]
        if store is None or not ids:
            return 0
        try:
            wanted = await anyio.to_thread.run_sync(store.task_records().cancels_for, ids)
        except StoreError as exc:
            logger.debug("cancel requests could not be read: {}", exc)
            return 0
        stopped = 0
        for run_id in wanted:
            run = live.get(run_id)
            if run is not None and run.stopped is None and run.stop(CANCEL_REASON):
                logger.bind(run_id=run_id).info("run cancelled on request from another replica")
                stopped += 1
        return stopped
