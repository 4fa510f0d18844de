"""The ReasonKit MCP server: one tool per loaded protocol, `think` (a profile), `run_result`; the
`reasonkit://protocols/{id}` and `reasonkit://runs/{run_id}` resources; one prompt per ThinkTool.

Built on the SDK's low-level `mcp.server.lowlevel.Server` (handlers for tools/list, tools/call, ...)
rather than `MCPServer`'s decorators: the tools come from data files, so their input and output
schemas are generated JSON schemas, not Python signatures, and inputs are checked by the run service
(`reasonkit.protocol.inputs`). Protocol faults (unknown tool, unknown prompt, malformed params) are
JSON-RPC errors; everything that goes wrong while running a tool is a tool result with `isError`.

This module wires the pieces: tools (server/mcp/tools.py), resources and prompts (server/mcp/resources.py),
reload (server/mcp/reload.py), the process state and provider lifecycle (server/mcp/runtime.py). Runs are
started, recorded and counted by the run service (reasonkit/runs.py), as for `rk think`.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from loguru import logger
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from reasonkit import __version__
from reasonkit.config import Settings
from reasonkit.live_runs import LiveRun
from reasonkit.observability.metrics import Metrics, Stopwatch, default_metrics
from reasonkit.protocol.loader import Registry, load_registry
from reasonkit.run_notices import startup_notice
from reasonkit.runs import RunService
from reasonkit.server.capacity.run_slots import RunSlots
from reasonkit.server.mcp import schemas, tasks
from reasonkit.server.mcp.estimates import MIN_DEADLINE_S
from reasonkit.server.mcp.reload import Reloader
from reasonkit.server.mcp.resources import ResourceHandlers
from reasonkit.server.mcp.runtime import ProviderFactory, Runtime, ServerStatus
from reasonkit.server.mcp.tools import ToolHandlers, build_tools
from reasonkit.store.base import StoreBackend

INSTRUCTIONS = (
    "ReasonKit provides structured-reasoning ThinkTools. Each tool runs several model calls and returns an "
    "answer with a confidence score and the signals behind it. Call them only for questions that merit the "
    "cost (decisions, analyses, claims to check), not for simple lookups. Results marked `complete: false` "
    "were cut short by the deadline: say so when you use them. Long calls come back as an MCP task to "
    "clients with the tasks extension; otherwise pass `background: true` and poll `run_result`."
)


class _Server(Server[Any]):
    """The SDK server, advertising `listChanged` for tools, prompts and resources to handshake-era
    clients (a SIGHUP reload changes them). 2026-07-28 clients learn it from `subscriptions/listen`."""

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        notify = notification_options or NotificationOptions(
            prompts_changed=True, resources_changed=True, tools_changed=True
        )
        return super().create_initialization_options(notify, *args, **kwargs)


class ReasonKitServer:
    """Settings + registry + provider factory + run service -> an SDK `Server` (`.server`).

    The constructor does no I/O beyond what it is given: `start()` opens the run store (marking runs
    of a dead process interrupted and applying retention); `rk serve-mcp` and `build_server` call it."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        provider_factory: ProviderFactory | None = None,
        store: StoreBackend | None = None,
        metrics: Metrics | None = None,
        status: ServerStatus | None = None,
    ):
        self.settings = settings
        self.metrics: Metrics = metrics or default_metrics()
        if provider_factory is None:
            from reasonkit.providers.stack import build_provider

            # The default provider records its breaker, retry and cache metrics in the same registry.
            def provider_factory(s: Settings) -> Any:
                return build_provider(s, metrics=self.metrics)

        self.provider_factory: ProviderFactory = provider_factory
        self.service = RunService(settings, registry, store=store, metrics=self.metrics)
        self.status = status or ServerStatus()
        # run slots: read by the tool handlers and the HTTP gate (server/capacity/run_slots.py)
        self.admission = self.status.admission = RunSlots(lambda: self.settings, self.metrics)
        self.deadline = settings.server.tool_deadline_secs or MIN_DEADLINE_S
        self.deadlines: dict[str, float] = {}  # tool or profile -> its default deadline (build_tools)
        # Lifecycle: HTTP inbound security (set by `rk serve-mcp` in HTTP mode), the settings source
        # for SIGHUP reloads, change notifications for connected clients.
        self.security: Any = None  # reasonkit.server.http.security.SecurityPolicy in HTTP mode
        self.bind_host: str = settings.server.host
        self.settings_loader: Callable[[], Settings] | None = None
        self.runtime: Runtime | None = None
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self.connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self.notice: str | None = None  # the local-model notice, for the log and /health
        self.tool_handlers = ToolHandlers(self)
        self.resource_handlers = ResourceHandlers(self)
        self.reloader = Reloader(self)
        self._install_registry(registry)
        self.server = self._build_sdk_server()

    def start(self) -> None:
        """Open the run store (I/O; `StoreError` when it cannot be opened): see
        `RunService.open_store`."""
        self.service.open_store(required=True)
        if self.service.store is not None:  # retention, WAL checkpoints, failed final saves, while serving
            self.service.store.start_maintenance(lambda: self.settings.storage)  # a reload may change them
        self.notice = startup_notice(self.settings)
        if self.notice:
            logger.warning(self.notice)

    # ------------------------------------------------------------------ state shared with handlers
    @property
    def store(self) -> StoreBackend | None:
        return self.service.store

    @property
    def live(self) -> dict[str, LiveRun]:
        return self.service.live

    @property
    def registry(self) -> Registry:
        return self.service.registry

    def apply(self, settings: Settings, registry: Registry) -> None:
        """Switch to new settings and protocols (after a reload)."""
        self.settings = settings
        self.deadline = settings.server.tool_deadline_secs or MIN_DEADLINE_S
        self.service.reconfigure(settings, registry)
        self._install_registry(registry)

    def _install_registry(self, registry: Registry) -> None:
        reserved = (schemas.THINK_TOOL, schemas.RUN_RESULT_TOOL)
        self.protocols = {pid: p for pid, p in sorted(registry.protocols.items()) if pid not in reserved}
        for pid in set(registry.protocols) - set(self.protocols):
            logger.warning(
                "protocol id '{}' is reserved for a built-in tool; it is not exposed as a tool", pid
            )
        self.tools = build_tools(self)
        self.metrics.know(t.name for t in self.tools)  # other tool names are counted as `other`

    async def reload(self) -> bool:
        return await self.reloader.reload()

    def provider_info(self) -> dict[str, Any]:
        """For /health: the output modes the provider negotiated, and the local-model notice."""
        runtime = self.runtime
        provider = runtime.current_provider() if runtime is not None else None
        info: dict[str, Any] = {}
        if provider is not None:
            try:
                info["output_modes"] = provider.output_modes()
            except Exception as exc:  # noqa: BLE001 - health must answer
                logger.debug("output_modes failed: {}", exc)
        if self.notice:
            info["notice"] = self.notice
        from reasonkit.server.http.health import circuit_states

        info["circuits"] = circuit_states(provider)  # each provider's breaker (empty before the first call)
        return info

    # ------------------------------------------------------------------ the SDK server
    def _build_sdk_server(self) -> Server[Runtime]:
        tools, resources = self.tool_handlers, self.resource_handlers
        server: Server[Runtime] = _Server(
            "reasonkit",
            version=__version__,
            title="ReasonKit",
            description="Structured-reasoning ThinkTools with calibrated confidence",
            instructions=INSTRUCTIONS,
            lifespan=self._lifespan,
            get_tool_input_schema=self._input_schema,
            on_list_tools=tools.list_tools,
            on_list_resources=resources.list_resources,
            on_list_resource_templates=resources.list_resource_templates,
            on_read_resource=resources.read_resource,
            on_list_prompts=resources.list_prompts,
            on_get_prompt=resources.get_prompt,
            on_subscriptions_listen=self.listen,
        )
        server.middleware.append(self._metrics_middleware)
        # tools/call may answer a CreateTaskResult, which `on_call_tool`'s type does not name
        server.add_request_handler("tools/call", types.CallToolRequestParams, tools.call_tool)
        # the tasks extension (SEP-2663): advertised in server/discover, its three methods served
        tasks.serve(server, tools.tasks)
        return server

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        return next((t.input_schema for t in self.tools if t.name == name), None)

    @asynccontextmanager
    async def _lifespan(self, _server: Server[Runtime]) -> AsyncIterator[Runtime]:
        async with anyio.create_task_group() as tg:
            runtime = Runtime(lambda: self.settings, self.provider_factory, tg, self.metrics)
            self.runtime = runtime
            tg.start_soon(tasks.CancelWatch(self.service).run)  # cancels asked for on other replicas
            try:
                yield runtime
            finally:
                # Background runs still going when the server stops are cancelled and saved as such.
                self.listen.close()
                tg.cancel_scope.cancel()
                await runtime.aclose()
                self.runtime = None

    async def _metrics_middleware(self, ctx: ServerRequestContext[Any], call_next: Any) -> Any:
        """Counts non-tool requests (tool calls are counted by the run service) and remembers
        handshake-era connections for list_changed notifications after a reload."""
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            # The SDK's `ServerSession` is a per-request proxy; the connection behind it (no public
            # accessor in SDK 2.3) lives as long as the client's connection, and is held weakly here.
            conn = getattr(ctx.session, "_connection", None)
            if conn is not None and hasattr(conn, "send_tool_list_changed"):
                self.connections.add(conn)
        if ctx.request_id is None or ctx.method == "tools/call":
            return await call_next(ctx)
        stopwatch = Stopwatch()
        status = "error"
        try:
            result = await call_next(ctx)
            status = "ok"
            return result
        finally:
            self.metrics.observe_request(ctx.method, "", status, stopwatch.seconds)


def build_server(
    settings: Settings,
    registry: Registry | None = None,
    *,
    provider_factory: ProviderFactory | None = None,
    store: StoreBackend | None = None,
    metrics: Metrics | None = None,
    status: ServerStatus | None = None,
) -> ReasonKitServer:
    """The ReasonKit MCP server for `settings`, started (its run store open); `.server` is the SDK
    server to run or connect to."""
    if registry is None:
        registry = load_registry([Path(d) for d in settings.protocols.dirs])
        for problem in registry.problems:
            logger.warning("skipped invalid protocol data: {}", problem)
    core = ReasonKitServer(
        settings, registry, provider_factory=provider_factory, store=store, metrics=metrics, status=status
    )
    core.start()
    return core
