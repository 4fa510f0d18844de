"""The ReasonKit MCP server: one tool per loaded protocol, `think` (a profile), `run_result`; the
`reasonkit://protocols/{id}` and `reasonkit://runs/{run_id}` resources; one prompt per ThinkTool.

Built on the SDK's low-level `mcp.server.lowlevel.Server` (handlers for tools/list, tools/call, ...)
rather than `MCPServer`'s decorators: the tools come from data files, so their input and output
schemas are generated JSON schemas, not Python signatures, and the server validates and coerces
arguments itself (the engine's `coerce_inputs`). Protocol faults (unknown tool, unknown prompt,
malformed params) are JSON-RPC errors; everything that goes wrong while running a tool is a tool
result with `isError: true`.

Every call runs under a deadline and reports progress per step; a cancelled call stops its LLM calls
and is stored as cancelled; `background: true` runs in a task group that lives as long as the server
(its lifespan) and is fetched with `run_result`. Every run is saved in the run store.
"""

from __future__ import annotations

import inspect
import json
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from loguru import logger
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from reasonkit import __version__
from reasonkit.config import ConfigError, Settings
from reasonkit.engine import Budget, Engine, Event, InputError, RunResult
from reasonkit.engine.runner import coerce_inputs
from reasonkit.observability.metrics import Metrics, Stopwatch, default_metrics
from reasonkit.protocol.loader import Registry, load_registry
from reasonkit.protocol.models import PROFILE_INPUTS
from reasonkit.providers.base import LLMRequest, LLMResponse, NoProviderConfigured, Provider, ProviderError
from reasonkit.render import render_markdown
from reasonkit.server import schemas
from reasonkit.server.sampling import (
    SAMPLING,
    ProviderChoice,
    SamplingProvider,
    client_can_sample,
    sampling_unavailable_reason,
    sampling_wanted,
)

PROTOCOL_URI = "reasonkit://protocols/"
RUN_URI = "reasonkit://runs/"
BACKGROUND_DEFAULT_SECS = 600.0

INSTRUCTIONS = (
    "ReasonKit provides structured-reasoning ThinkTools. Each tool runs several model calls and returns an answer with "
    "a confidence score and the signals behind it. Call them only for questions that merit the cost (decisions, "
    "analyses, claims to check), not for simple lookups. Results marked `complete: false` were cut short by the "
    "deadline: say so when you use them. For long work pass `background: true` and poll `run_result`."
)

ProviderFactory = Any  # Callable[[Settings], Provider]
# Settings that a SIGHUP reload cannot change in a running process (they take effect at the next start).
RESTART_ONLY = (
    "server.host",
    "server.port",
    "server.workers",
    "server.metrics_port",
    "server.stateless_http",
    "storage.data_dir",
    "storage.save_runs",
)


class _Server(Server[Any]):
    """The SDK server, advertising `listChanged` for tools, prompts and resources to handshake-era
    clients (a SIGHUP reload changes them). 2026-07-28 clients learn it from `subscriptions/listen`."""

    def create_initialization_options(self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any) -> Any:
        notify = notification_options or NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        return super().create_initialization_options(notify, *args, **kwargs)


# ----------------------------------------------------------------------------- shared state
@dataclass
class ServerStatus:
    """Process-level state read by /health/ready and the shutdown logic."""

    ready: bool = False
    draining: bool = False
    inflight: int = 0
    started_at: float = field(default_factory=time.time)
    _idle: anyio.Event | None = None

    def begin(self) -> None:
        self.inflight += 1

    def end(self) -> None:
        self.inflight = max(0, self.inflight - 1)
        if self.inflight == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, grace: float) -> bool:
        """Wait until no tool run is in flight, at most `grace` seconds. True when idle."""
        with anyio.move_on_after(grace):
            while self.inflight > 0:
                self._idle = anyio.Event()
                await self._idle.wait()
            return True
        return self.inflight == 0


@dataclass
class LiveRun:
    result: RunResult
    background: bool
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    last: str = ""
    finished: bool = False
    sent: float = -1.0  # last progress value sent to the client

    def progress(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "last": self.last, "elapsed_s": round(time.monotonic() - self.started, 1)}


class MeteredProvider(Provider):
    """Records latency, tokens, cost and errors of every provider call in the metrics registry."""

    def __init__(self, inner: Provider, metrics: Metrics):
        self.inner = inner
        self.metrics = metrics
        self.name = inner.name
        self.model = inner.model

    async def complete(self, request: LLMRequest) -> LLMResponse:
        t0 = time.monotonic()
        try:
            resp = await self.inner.complete(request)
        except ProviderError as exc:
            self.metrics.observe_provider_call(exc.provider or self.name, time.monotonic() - t0, error_type=exc.kind)
            raise
        if getattr(resp, "cached", False):  # served by the response cache: no call, no tokens (cache metrics count it)
            return resp
        self.metrics.observe_provider_call(resp.provider or self.name, time.monotonic() - t0, usage=resp.usage.as_dict(), cost_usd=resp.cost_usd)
        return resp


class Runtime:
    """What lives as long as the server (its lifespan): the background task group and the
    configured provider (built on first use, closed at shutdown)."""

    def __init__(self, core: ReasonKitServer, tg: TaskGroup):
        self.core = core
        self.tg = tg
        self._provider: Provider | None = None
        self._retired: list[Provider] = []

    def retire_provider(self) -> None:
        """After a reload: the next call builds a provider from the new settings; the old one keeps
        serving the calls that hold it and is closed at shutdown."""
        if self._provider is not None:
            self._retired.append(self._provider)
            self._provider = None

    def configured_provider(self) -> Provider:
        if self._provider is None:
            settings = self.core.settings
            if settings.llm.default_provider == SAMPLING:  # sampling first, then the first configured API provider
                settings = settings.model_copy(deep=True)
                settings.llm.default_provider = None
            self._provider = self.core.provider_factory(settings)
        return self._provider

    def choose_provider(self, session: Any, request_id: Any, background: bool) -> ProviderChoice:
        settings = self.core.settings
        want = sampling_wanted(settings)
        if want and not background and client_can_sample(session):
            return ProviderChoice(SamplingProvider(session, request_id, settings.llm.default_model), via_sampling=True)
        try:
            return ProviderChoice(self.configured_provider())
        except NoProviderConfigured as exc:
            msg = str(exc)
            if want:
                why = "background runs cannot use client sampling" if background else sampling_unavailable_reason(session)
                msg = f"client sampling is enabled but cannot be used here ({why}), and {msg}"
            return ProviderChoice(None, error=msg)
        except Exception as exc:  # noqa: BLE001 - a broken provider setup is the caller's tool error, not a crash
            logger.opt(exception=exc).error("cannot set up the LLM provider")
            return ProviderChoice(None, error=f"cannot set up the LLM provider: {type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        self.retire_provider()
        providers, self._retired = self._retired, []
        with anyio.CancelScope(shield=True):
            for provider in providers:
                try:
                    await provider.aclose()
                except Exception as exc:  # noqa: BLE001
                    logger.debug("provider close failed: {}", exc)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _text_result(text: str, structured: dict[str, Any] | None = None, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured, is_error=is_error)


def _error_result(message: str) -> types.CallToolResult:
    return _text_result(f"ReasonKit error: {message}", None, is_error=True)


def _summary_from_trace(trace: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(structured summary, markdown) of a stored trace, tolerating statuses the engine does not
    produce (the store's "interrupted")."""
    status = trace.get("status", "")
    try:
        tr = dict(trace)
        if status not in ("running", "complete", "incomplete", "cancelled", "failed"):
            tr["status"] = "incomplete"
        res = RunResult.model_validate(tr)
        summary, text = res.summary(), render_markdown(res)
        summary["status"] = status
        if status == "interrupted":
            text = f"**Interrupted run** ({trace.get('stop_reason') or 'the server stopped before it finished'}).\n\n{text}"
        return summary, text
    except Exception:  # noqa: BLE001 - a trace from another version: show what is there
        summary = {
            "run_id": str(trace.get("run_id", "")),
            "status": str(status),
            "complete": bool(trace.get("complete", False)),
            "answer": str(trace.get("answer", "")),
            "confidence": float(trace.get("confidence") or 0.0),
            "meets_threshold": bool(trace.get("meets_threshold", False)),
        }
        return summary, f"{summary['answer']}\n\nrun `{summary['run_id']}`: {status}"


# ----------------------------------------------------------------------------- the server
class ReasonKitServer:
    """Settings + registry + provider factory + run store + metrics -> an SDK `Server` (`.server`)."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry | None = None,
        *,
        provider_factory: ProviderFactory | None = None,
        store: Any = None,
        metrics: Metrics | None = None,
        status: ServerStatus | None = None,
    ):
        from reasonkit.providers import build_provider

        self.settings = settings
        registry = registry if registry is not None else load_registry([Path(d) for d in settings.protocols.dirs])
        for problem in registry.problems:
            logger.warning("skipped invalid protocol data: {}", problem)
        self.metrics: Metrics = metrics or default_metrics()
        # The default provider records its breaker, retry and cache metrics in the same registry.
        self.provider_factory = provider_factory or (lambda s: build_provider(s, metrics=self.metrics))
        if store is None:
            from reasonkit.store import RunStore

            store = RunStore.for_settings(settings)
        self.store = store
        self.status = status or ServerStatus()
        self.live: dict[str, LiveRun] = {}
        self.deadline = settings.server.tool_deadline_secs
        self._install_registry(registry)
        # Lifecycle: HTTP inbound security (set by `rk serve-mcp` in HTTP mode), the settings source
        # for SIGHUP reloads, change notifications for connected clients.
        self.security: Any = None  # reasonkit.server.security.SecurityPolicy in HTTP mode
        self.bind_host: str = settings.server.host
        self.settings_loader: Callable[[], Settings] | None = None
        self.runtime: Runtime | None = None
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._reload_lock = anyio.Lock()
        n = self.store.mark_interrupted()
        if n:
            logger.warning("{} run(s) from a previous server process were marked interrupted", n)

        server: Server[Runtime] = _Server(
            "reasonkit",
            version=__version__,
            title="ReasonKit",
            description="Structured-reasoning ThinkTools with calibrated confidence",
            instructions=INSTRUCTIONS,
            lifespan=self._lifespan,
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_subscriptions_listen=self.listen,
        )
        server.middleware.append(self._metrics_middleware)
        self.server = server

    # ------------------------------------------------------------------ lifespan
    @asynccontextmanager
    async def _lifespan(self, _server: Server[Runtime]) -> AsyncIterator[Runtime]:
        async with anyio.create_task_group() as tg:
            rt = Runtime(self, tg)
            self.runtime = rt
            try:
                yield rt
            finally:
                # Background runs still going when the server stops are cancelled and saved as such.
                self.listen.close()
                tg.cancel_scope.cancel()
                await rt.aclose()
                self.runtime = None

    # ------------------------------------------------------------------ registry and reload
    def _install_registry(self, registry: Registry) -> None:
        self.registry = registry
        self.protocols = {pid: p for pid, p in sorted(registry.protocols.items()) if pid not in (schemas.THINK_TOOL, schemas.RUN_RESULT_TOOL)}
        for pid in set(registry.protocols) - set(self.protocols):
            logger.warning("protocol id '{}' is reserved for a built-in tool; it is not exposed as a tool", pid)
        self.tools = self._build_tools()

    def _load_for_reload(self) -> tuple[Settings, Registry, Any]:
        """(new settings, new registry, new security policy); raises on a bad config or token file."""
        from reasonkit.observability.logging import add_secrets
        from reasonkit.server.security import SecurityPolicy, secret_values

        settings = self.settings_loader() if self.settings_loader is not None else self.settings
        add_secrets(secret_values(settings, []))  # new API keys are redacted from the logs too
        registry = load_registry([Path(d) for d in settings.protocols.dirs])
        policy = None
        if self.security is not None:
            policy = SecurityPolicy.from_settings(settings, self.bind_host)
        return settings, registry, policy

    async def reload(self) -> bool:
        """SIGHUP: re-read the settings, token file and protocol directories, and switch to them
        without dropping connections: calls in flight finish with what they started with, the next
        ones use the new set. A config that cannot be loaded leaves everything as it was; a protocol
        file that is now broken is reported and its previous version stays. True when applied."""
        from reasonkit.server.security import SecurityError

        async with self._reload_lock:
            logger.info("reloading settings and protocols")
            try:
                settings, registry, policy = await anyio.to_thread.run_sync(self._load_for_reload)
            except (ConfigError, SecurityError, OSError) as exc:
                self.metrics.reloads.labels(outcome="failed").inc()
                logger.error("reload failed; the previous settings and protocols stay in effect: {}", exc)
                return False
            kept = self._keep_previous(registry)
            for problem in registry.problems:
                logger.warning("skipped invalid protocol data: {}", problem)
            old = self.settings
            for key in RESTART_ONLY:
                section, name = key.split(".")
                before, after = getattr(getattr(old, section), name), getattr(getattr(settings, section), name)
                if before != after:
                    logger.warning("{} changed ({!r} -> {!r}): it takes effect after a restart", key, before, after)
            if settings.logging != old.logging:
                from reasonkit.observability.logging import setup_logging

                setup_logging(settings)
            provider_changed = (settings.llm, settings.features, settings.database) != (old.llm, old.features, old.database)
            before_tools = [t.model_dump() for t in self.tools]
            before_protocols = set(self.protocols)
            self.settings = settings
            self.deadline = settings.server.tool_deadline_secs
            self._install_registry(registry)
            if policy is not None:
                self.security = policy
            if provider_changed and self.runtime is not None:
                self.runtime.retire_provider()
            outcome = "partial" if registry.problems else "ok"
            self.metrics.reloads.labels(outcome=outcome).inc()
            added, removed = sorted(set(self.protocols) - before_protocols), sorted(before_protocols - set(self.protocols))
            logger.info(
                "reloaded: {} tools{}{}{}{}",
                len(self.tools),
                f"; added {', '.join(added)}" if added else "",
                f"; removed {', '.join(removed)}" if removed else "",
                f"; kept the previous version of {', '.join(kept)}" if kept else "",
                f"; {len(registry.problems)} problem(s) in protocol files" if registry.problems else "",
            )
            if [t.model_dump() for t in self.tools] != before_tools:
                await self._notify_changed()
            return True

    def _keep_previous(self, registry: Registry) -> list[str]:
        """Protocols and profiles whose file is broken now keep their previously loaded version."""
        bad = {_resolved(p.file) for p in registry.problems}
        kept = []
        for pid, proto in self.registry.protocols.items():
            if proto.source and _resolved(proto.source) in bad:
                registry.protocols[pid] = proto
                kept.append(pid)
        for pid, prof in self.registry.profiles.items():
            if prof.source and _resolved(prof.source) in bad and pid not in registry.profiles:
                registry.profiles[pid] = prof
                kept.append(f"profile {pid}")
        return kept

    async def _notify_changed(self) -> None:
        """Tell connected clients the tools, prompts and resources changed: 2026-07-28 clients through
        their `subscriptions/listen` streams, handshake-era sessions (stdio, stateful HTTP) with
        `notifications/*/list_changed`. Stateless handshake-era HTTP has no channel for it."""
        for event in (ToolsListChanged(), PromptsListChanged(), ResourcesListChanged()):
            await self.bus.publish(event)
        for conn in list(self._connections):
            try:
                with anyio.move_on_after(2):
                    await conn.send_tool_list_changed()
                    await conn.send_prompt_list_changed()
                    await conn.send_resource_list_changed()
            except Exception as exc:  # noqa: BLE001 - a connection that went away
                logger.debug("list_changed notification not delivered: {}", exc)
                self._connections.discard(conn)

    # ------------------------------------------------------------------ tools
    def _build_tools(self) -> list[types.Tool]:
        tools = [
            types.Tool(
                name=p.id,
                title=p.name,
                description=schemas.protocol_description(p, self.deadline),
                input_schema=schemas.protocol_input_schema(p, self.deadline),
                output_schema=schemas.OUTPUT_SCHEMA,
                annotations=schemas.THINKTOOL_ANNOTATIONS.model_copy(update={"title": p.name}),
            )
            for p in self.protocols.values()
        ]
        if self.registry.profiles:
            tools.append(
                types.Tool(
                    name=schemas.THINK_TOOL,
                    title="ReasonKit think (profile)",
                    description=schemas.think_description(self.registry.profiles, self.deadline),
                    input_schema=schemas.think_input_schema(self.registry.profiles, self.settings.engine.default_profile, self.deadline),
                    output_schema=schemas.OUTPUT_SCHEMA,
                    annotations=schemas.THINKTOOL_ANNOTATIONS.model_copy(update={"title": "ReasonKit think"}),
                )
            )
        tools.append(
            types.Tool(
                name=schemas.RUN_RESULT_TOOL,
                title="ReasonKit run result",
                description=schemas.RUN_RESULT_DESCRIPTION,
                input_schema=schemas.RUN_RESULT_INPUT_SCHEMA,
                output_schema=schemas.OUTPUT_SCHEMA,
                annotations=schemas.RUN_RESULT_ANNOTATIONS,
            )
        )
        return tools

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        return next((t.input_schema for t in self.tools if t.name == name), None)

    async def _list_tools(self, ctx: ServerRequestContext[Runtime], params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools)

    async def _call_tool(self, ctx: ServerRequestContext[Runtime], params: types.CallToolRequestParams) -> types.CallToolResult:
        name = params.name
        args = dict(params.arguments or {})
        if name == schemas.RUN_RESULT_TOOL:
            sw = Stopwatch()
            result = await self._run_result(args)
            self.metrics.observe_request(name, "", "error" if result.is_error else "ok", sw.seconds)
            return result
        if name == schemas.THINK_TOOL and self.registry.profiles:
            kind = "profile"
        elif name in self.protocols:
            kind = "protocol"
        else:
            self.metrics.observe_request("tools/call", "", "error", 0.0)
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}", data={"tool": name})
        return await self._run_tool(ctx, name, kind, args)

    def _control_args(self, args: dict[str, Any]) -> tuple[float | None, bool]:
        deadline = args.pop("deadline_s", None)
        background = args.pop("background", None)
        if deadline is not None and deadline != "":
            try:
                if isinstance(deadline, bool):
                    raise ValueError
                deadline = float(deadline)
            except (TypeError, ValueError):
                raise InputError(f"input 'deadline_s' must be a number of seconds, got {str(deadline)[:40]!r}") from None
            if not 0 < deadline <= schemas.MAX_DEADLINE_S:
                raise InputError(f"input 'deadline_s' must be > 0 and <= {schemas.MAX_DEADLINE_S:g}, got {deadline:g}")
        else:
            deadline = None
        if background is None or background == "":
            bg = False
        elif isinstance(background, bool):
            bg = background
        else:
            s = str(background).strip().lower()
            if s not in ("true", "false", "1", "0", "yes", "no"):
                raise InputError(f"input 'background' must be boolean, got {str(background)[:40]!r}")
            bg = s in ("true", "1", "yes")
        return deadline, bg

    async def _run_tool(self, ctx: ServerRequestContext[Runtime], name: str, kind: str, args: dict[str, Any]) -> types.CallToolResult:
        sw = Stopwatch()
        rt: Runtime = ctx.lifespan_context
        label = name
        try:
            deadline, background = self._control_args(args)
            if kind == "profile":
                pid = args.pop("profile", None) or self.settings.engine.default_profile
                if not isinstance(pid, str) or pid not in self.registry.profiles:
                    raise InputError(f"input 'profile' must be one of {', '.join(sorted(self.registry.profiles))}, got {str(pid)[:40]!r}")
                label = pid
                clean = coerce_inputs(PROFILE_INPUTS, args, f"tool '{name}'")
            else:
                pid = name
                clean = coerce_inputs(self.protocols[pid].inputs, args, f"tool '{name}'")
        except InputError as exc:
            self.metrics.observe_request(name, label, "error", sw.seconds)
            logger.bind(request_id=str(ctx.request_id), tool=name, profile=label).info("rejected arguments: {}", exc)
            return _error_result(str(exc))
        if background and self.status.draining:
            self.metrics.observe_request(name, label, "error", sw.seconds)
            return _error_result("the server is shutting down and does not start background runs; retry on another instance")
        choice = rt.choose_provider(ctx.session, ctx.request_id, background)
        if choice.provider is None:
            self.metrics.observe_request(name, label, "error", sw.seconds)
            error = choice.error or "no LLM provider is available"
            logger.bind(request_id=str(ctx.request_id), tool=name, profile=label).warning("no provider: {}", error.splitlines()[0])
            return _error_result(error)
        engine = Engine(
            self.registry,
            MeteredProvider(choice.provider, self.metrics),
            max_concurrency=self.settings.engine.max_concurrency,
            temperature=self.settings.llm.temperature,
            max_tokens=self.settings.llm.max_tokens,
        )
        res = engine.new_result(kind, pid, clean)
        e = self.settings.engine
        if background:
            budget = Budget(seconds=deadline or e.budget_secs or BACKGROUND_DEFAULT_SECS, tokens=e.budget_tokens, usd=e.budget_usd)
        else:
            budget = Budget(seconds=deadline or self.deadline, tokens=e.budget_tokens, usd=e.budget_usd)
            if e.budget_secs is not None and budget.seconds is not None:
                budget.seconds = min(budget.seconds, e.budget_secs)
        live = LiveRun(res, background)
        self.live[res.run_id] = live
        log = logger.bind(request_id=str(ctx.request_id), tool=name, profile=label, run_id=res.run_id)

        if background:
            try:
                await anyio.to_thread.run_sync(self.store.start, res)
            except Exception as exc:  # noqa: BLE001
                self.live.pop(res.run_id, None)
                self.metrics.observe_request(name, label, "error", sw.seconds)
                log.error("cannot record the run: {}", exc)
                return _error_result(f"the run store cannot record the run: {exc}")
            rt.tg.start_soon(self._background, engine, live, kind, pid, clean, budget, name, label)
            self.metrics.observe_request(name, label, "running", sw.seconds)
            log.info("started in the background (deadline {:g}s)", budget.seconds or 0)
            structured = {
                "run_id": res.run_id,
                "status": "running",
                "complete": False,
                kind: pid,
                "progress": live.progress(),
                "message": f"Started in the background. Call run_result with run_id {res.run_id} to fetch the result.",
            }
            return _text_result(
                f"Started `{name}` in the background as run `{res.run_id}`. Call `run_result` with this run_id to fetch the result "
                f"(it keeps running for up to {budget.seconds:g} s).",
                structured,
            )

        async def progress(ev: Event) -> None:
            await self._progress(ctx, live, ev)

        result = await self._execute(engine, live, kind, pid, clean, budget, progress, name, label, sw, log)
        if result is None:
            return _error_result(f"the run failed with an internal error; see the server log (run {res.run_id})")
        return self._tool_result(result)

    async def _execute(self, engine: Engine, live: LiveRun, kind: str, pid: str, clean: dict[str, Any], budget: Budget, forward: Any, name: str, label: str, sw: Stopwatch, log: Any) -> RunResult | None:
        """Run, save (also when cancelled or crashed), count. None when the engine raised."""
        from reasonkit.store import RunRecorder

        res = live.result
        recorder = RunRecorder(self.store, res, forward=forward)
        self.status.begin()
        failed: BaseException | None = None
        try:
            with self.metrics.track_inflight():
                if kind == "protocol":
                    await engine.run_protocol(pid, clean, budget=budget, on_event=recorder.on_event, result=res)
                else:
                    await engine.run_profile(pid, clean, budget=budget, on_event=recorder.on_event, result=res)
        except anyio.get_cancelled_exc_class():
            if res.status == "running":  # cancelled before the engine's own handler was reached
                res.status, res.complete = "cancelled", False
                res.stop_reason = res.stop_reason or "cancelled by the caller"
            with anyio.CancelScope(shield=True):
                await self._finish(recorder, live)
                self.metrics.observe_request(name, label, "cancelled", sw.seconds)
                self.metrics.observe_run(res)
                log.bind(duration_ms=round(sw.seconds * 1000, 1), status="cancelled", tokens=res.tokens.total).info("run cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 - an engine bug must not take the server down
            failed = exc
            res.status = "failed"
            res.complete = False
            res.errors.append(f"internal error: {type(exc).__name__}: {exc}")
            res.finished_at = time.time()
        finally:
            self.status.end()
        with anyio.CancelScope(shield=True):
            await self._finish(recorder, live)
        status = res.status if failed is None else "error"
        self.metrics.observe_request(name, label, status, sw.seconds)
        self.metrics.observe_run(res)
        bound = log.bind(duration_ms=round(sw.seconds * 1000, 1), confidence=round(res.confidence, 4), tokens=res.tokens.total, status=res.status)
        if failed is not None:
            bound.opt(exception=failed).error("run crashed")
            return None
        (bound.warning if res.status == "failed" else bound.info)("run finished")
        return res

    async def _finish(self, recorder: Any, live: LiveRun) -> None:
        try:
            await anyio.to_thread.run_sync(recorder.finish, live.result)
        finally:
            live.finished = True
            self.live.pop(live.result.run_id, None)

    async def _background(self, engine: Engine, live: LiveRun, kind: str, pid: str, clean: dict[str, Any], budget: Budget, name: str, label: str) -> None:
        sw = Stopwatch()
        log = logger.bind(tool=name, profile=label, run_id=live.result.run_id)

        async def progress(ev: Event) -> None:
            self._track(live, ev)

        await self._execute(engine, live, kind, pid, clean, budget, progress, name, label, sw, log)

    def _track(self, live: LiveRun, ev: Event) -> tuple[float, str] | None:
        """Update a live run from an engine event; (progress value, message) when it is worth reporting."""
        if ev.total:
            live.total = ev.total
        if ev.type == "run_started":
            return 0.0, f"started {live.result.kind} {live.result.name}"
        if ev.type != "step_finished":
            return None
        where = ".".join(x for x in (ev.entry, ev.step) if x) + (f"[{ev.item}]" if ev.item else "")
        live.done = max(live.done, ev.done)
        live.last = f"{where} {ev.status or ''}".strip()
        conf = f" (confidence {ev.confidence:.2f})" if ev.confidence is not None else ""
        return float(ev.done), f"{where}: {ev.status}{conf}"

    async def _progress(self, ctx: ServerRequestContext[Runtime], live: LiveRun, ev: Event) -> None:
        tracked = self._track(live, ev)
        if tracked is None:
            return
        value, message = tracked
        # notifications/progress values must increase: item events move halfway towards the next step.
        last = live.sent
        if ev.type == "step_finished" and ev.item is not None:
            value = last + (int(last) + 1 - last) / 2 if last >= 0 else 0.5
        if value <= last:
            return
        live.sent = value
        try:
            await ctx.session.report_progress(value, float(live.total) if live.total else None, message)
        except Exception as exc:  # noqa: BLE001 - a client that went away must not break the run
            logger.debug("progress notification failed: {}", exc)

    def _tool_result(self, res: RunResult) -> types.CallToolResult:
        summary = res.summary()
        text = render_markdown(res)
        if res.status == "failed":
            errors = "; ".join(res.errors[:5]) or res.stop_reason or "no step finished"
            return _text_result(f"ReasonKit error: the {res.kind} `{res.name}` failed: {errors}\n\n{text}", summary, is_error=True)
        return _text_result(text, summary)

    # ------------------------------------------------------------------ run_result
    async def _run_result(self, args: dict[str, Any]) -> types.CallToolResult:
        unknown = sorted(set(args) - {"run_id"})
        if unknown:
            return _error_result(f"run_result has no input {', '.join(repr(u) for u in unknown)} (inputs: run_id)")
        run_id = args.get("run_id")
        if not isinstance(run_id, str) or not run_id.strip():
            return _error_result("input 'run_id' is required: the run_id a ThinkTool call returned")
        run_id = run_id.strip()
        live = self.live.get(run_id)
        if live is not None and not live.finished:
            return self._running_result(live)
        try:
            trace = await anyio.to_thread.run_sync(self.store.get, run_id)
        except Exception as exc:  # noqa: BLE001
            return _error_result(f"the run store cannot be read: {exc}")
        if trace is None:
            return _error_result(f"no run with id '{run_id}' (runs are kept in the run store; see `rk runs list`)")
        summary, text = _summary_from_trace(trace)
        if summary["status"] == "running":
            summary["message"] = "The run is still going in another server process; call run_result again later."
            return _text_result(f"Run `{run_id}` is still running in another server process; call `run_result` again later.", summary)
        return _text_result(text, summary)

    def _running_result(self, live: LiveRun) -> types.CallToolResult:
        res = live.result
        p = live.progress()
        structured = {
            "run_id": res.run_id,
            "status": "running",
            "complete": False,
            res.kind: res.name,
            "progress": p,
            "message": "Still running; call run_result again later.",
        }
        total = f"/{p['total']}" if p["total"] else ""
        return _text_result(
            f"Run `{res.run_id}` ({res.kind} `{res.name}`) is still running: {p['done']}{total} steps done after {p['elapsed_s']:g} s"
            + (f", last: {p['last']}" if p["last"] else "")
            + ". Call `run_result` again later.",
            structured,
        )

    # ------------------------------------------------------------------ resources
    async def _list_resources(self, ctx: ServerRequestContext[Runtime], params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=f"{PROTOCOL_URI}{p.id}",
                    name=p.id,
                    title=f"{p.name} protocol",
                    description=f"The {p.name} ThinkTool protocol file (TOML): its inputs, steps, prompts and confidence rules.",
                    mime_type="application/toml",
                )
                for p in self.protocols.values()
            ]
        )

    async def _list_resource_templates(self, ctx: ServerRequestContext[Runtime], params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=PROTOCOL_URI + "{id}",
                    name="protocol",
                    title="ThinkTool protocol",
                    description="A ThinkTool protocol file (TOML) by id.",
                    mime_type="application/toml",
                ),
                types.ResourceTemplate(
                    uri_template=RUN_URI + "{run_id}",
                    name="run",
                    title="ReasonKit run trace",
                    description="The full trace of a run (prompts, raw replies, parsed outputs, confidence, usage) as JSON.",
                    mime_type="application/json",
                ),
            ]
        )

    async def _read_resource(self, ctx: ServerRequestContext[Runtime], params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri.startswith(PROTOCOL_URI):
            pid = uri[len(PROTOCOL_URI) :]
            proto = self.protocols.get(pid)
            if proto is None:
                raise MCPError(code=types.INVALID_PARAMS, message=f"Resource not found: no protocol '{pid}'", data={"uri": uri})
            try:
                text = await anyio.Path(proto.source).read_text(encoding="utf-8")
            except OSError as exc:
                raise MCPError(code=types.INTERNAL_ERROR, message=f"cannot read the protocol file: {exc.strerror or exc}", data={"uri": uri}) from None
            return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type="application/toml", text=text)])
        if uri.startswith(RUN_URI):
            run_id = uri[len(RUN_URI) :]
            live = self.live.get(run_id)
            trace: dict[str, Any] | None
            if live is not None and not live.finished:
                trace = live.result.trace()
            else:
                try:
                    trace = await anyio.to_thread.run_sync(self.store.get, run_id) if run_id else None
                except Exception as exc:  # noqa: BLE001
                    raise MCPError(code=types.INTERNAL_ERROR, message=f"the run store cannot be read: {exc}", data={"uri": uri}) from None
            if trace is None:
                raise MCPError(code=types.INVALID_PARAMS, message=f"Resource not found: no run '{run_id}'", data={"uri": uri})
            return types.ReadResourceResult(
                contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=json.dumps(trace, ensure_ascii=False, indent=2))]
            )
        raise MCPError(code=types.INVALID_PARAMS, message=f"Resource not found: {uri}", data={"uri": uri})

    # ------------------------------------------------------------------ prompts
    async def _list_prompts(self, ctx: ServerRequestContext[Runtime], params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[schemas.prompt_for(p) for p in self.protocols.values()])

    async def _get_prompt(self, ctx: ServerRequestContext[Runtime], params: types.GetPromptRequestParams) -> types.GetPromptResult:
        proto = self.protocols.get(params.name)
        if proto is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {params.name}", data={"prompt": params.name})
        args = dict(params.arguments or {})
        try:
            clean = coerce_inputs(proto.inputs, args, f"prompt '{proto.id}'")
        except InputError as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None
        text = schemas.prompt_text(proto, {k: str(v) for k, v in clean.items()})
        return types.GetPromptResult(
            description=f"Ask for a {proto.name} analysis",
            messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))],
        )

    # ------------------------------------------------------------------ metrics for non-tool requests
    async def _metrics_middleware(self, ctx: ServerRequestContext[Any], call_next: Any) -> Any:
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            # For list_changed notifications after a reload: the SDK's `ServerSession` is a per-request
            # proxy; the connection behind it (no public accessor in SDK 2.3) lives as long as the
            # client's connection, and is held weakly here.
            conn = getattr(ctx.session, "_connection", None)
            if conn is not None and hasattr(conn, "send_tool_list_changed"):
                self._connections.add(conn)
        if ctx.request_id is None or ctx.method == "tools/call":
            return await call_next(ctx)
        sw = Stopwatch()
        status = "error"
        try:
            result = await call_next(ctx)
            status = "ok"
            return result
        finally:
            self.metrics.observe_request(ctx.method, "", status, sw.seconds)


def _resolved(path: str) -> str:
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError):
        return path


def build_server(
    settings: Settings,
    registry: Registry | None = None,
    *,
    provider_factory: ProviderFactory | None = None,
    store: Any = None,
    metrics: Metrics | None = None,
    status: ServerStatus | None = None,
) -> ReasonKitServer:
    """The ReasonKit MCP server for `settings`; `.server` is the SDK server to run or connect to."""
    return ReasonKitServer(settings, registry, provider_factory=provider_factory, store=store, metrics=metrics, status=status)
