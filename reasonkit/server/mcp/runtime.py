"""What lives as long as the server process: its readiness, in-flight runs and admission gate
(`ServerStatus`), and, for the lifespan of the SDK server, the background task group and the
configured LLM provider (`Runtime`: built on first use behind the provider-call cap, swapped after
a reload, closed at shutdown)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from loguru import logger

from reasonkit.config import Settings
from reasonkit.errors import NoProviderConfigured
from reasonkit.observability.metrics import Metrics
from reasonkit.providers.base import Provider
from reasonkit.providers.stack import limited
from reasonkit.server.capacity.run_slots import RunSlots, max_provider_calls
from reasonkit.server.mcp.sampling import (
    SAMPLING,
    ProviderChoice,
    SamplingProvider,
    client_can_sample,
    sampling_unavailable_reason,
    sampling_wanted,
)

ProviderFactory = Callable[[Settings], Provider]


@dataclass
class ServerStatus:
    """Process-level state read by /health/ready and the shutdown logic."""

    ready: bool = False
    draining: bool = False
    inflight: int = 0
    started_at: float = field(default_factory=time.time)
    admission: RunSlots | None = None  # the gate (HTTP middleware and tool handlers share it)
    runs: dict[int, Any] = field(default_factory=dict)  # the runs in flight (reasonkit.runs.PreparedRun)
    _idle: anyio.Event | None = None

    def begin(self, run: Any = None) -> None:
        self.inflight += 1
        if run is not None:
            self.runs[id(run)] = run

    def end(self, run: Any = None) -> None:
        self.inflight = max(0, self.inflight - 1)
        self.runs.pop(id(run), None)
        if self.inflight == 0 and self._idle is not None:
            self._idle.set()

    def start_draining(self) -> None:
        """SIGTERM: readiness turns 503 and the gate admits nothing new."""
        self.draining = True
        if self.admission is not None:
            self.admission.draining = True

    def expire_runs(self, reason: str) -> int:
        """End every run in flight as its deadline would: each returns (and stores) what it finished,
        `incomplete` with its partial confidence. The number of runs told to stop."""
        told = 0
        for run in list(self.runs.values()):
            expire = getattr(run.engine, "expire", None)
            if expire is not None:
                expire(reason)
                told += 1
        return told

    async def wait_idle(self, grace: float) -> bool:
        """Wait until no tool run is in flight, at most `grace` seconds. True when idle."""
        with anyio.move_on_after(grace):
            while self.inflight > 0:
                self._idle = anyio.Event()
                await self._idle.wait()
            return True
        return self.inflight == 0


class Runtime:
    """The background task group and the configured provider, for the SDK server's lifespan."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        provider_factory: ProviderFactory,
        tg: TaskGroup,
        metrics: Metrics | None = None,
    ):
        self._settings = settings  # read at each use: a reload swaps the settings
        self.provider_factory = provider_factory
        self.tg = tg
        self.metrics = metrics
        # `[server] max_inflight_provider_calls`, shared by every provider this process builds
        self.provider_calls = anyio.CapacityLimiter(max_provider_calls(settings()))
        self._provider: Provider | None = None
        self._retired: list[Provider] = []

    def retire_provider(self) -> None:
        """After a reload: the next call builds a provider from the new settings; the old one keeps
        serving the calls that hold it and is closed at shutdown."""
        if self._provider is not None:
            self._retired.append(self._provider)
            self._provider = None

    def current_provider(self) -> Provider | None:
        """The configured provider if one was built already (nothing is built here)."""
        return self._provider

    def configured_provider(self) -> Provider:
        if self._provider is None:
            settings = self._settings()
            if settings.llm.default_provider == SAMPLING:  # sampling first, then the first API provider
                settings = settings.model_copy(deep=True)
                settings.llm.default_provider = None
            self.provider_calls.total_tokens = max_provider_calls(settings)
            self._provider = limited(self.provider_factory(settings), self.provider_calls, self.metrics)
        return self._provider

    def choose_provider(self, session: Any, request_id: Any, background: bool) -> ProviderChoice:
        settings = self._settings()
        want = sampling_wanted(settings)
        if want and not background and client_can_sample(session):
            sampler = SamplingProvider(session, request_id, settings.llm.default_model)
            return ProviderChoice(sampler)
        try:
            return ProviderChoice(self.configured_provider())
        except NoProviderConfigured as exc:
            message = str(exc)
            if want:
                why = (
                    "background runs cannot use client sampling"
                    if background
                    else sampling_unavailable_reason(session)
                )
                message = f"client sampling is enabled but cannot be used here ({why}), and {message}"
            return ProviderChoice(None, error=message)
        except Exception as exc:  # noqa: BLE001 - a broken provider setup is the caller's tool error
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
