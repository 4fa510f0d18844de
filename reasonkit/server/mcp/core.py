"""What the server's handlers (tools, resources and prompts, reload) need from the server: its
shape as a `typing.Protocol`, so they depend on this small interface instead of on
`reasonkit.server.mcp.app` (which builds them)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Protocol

import mcp_types as types
from mcp.server.subscriptions import InMemorySubscriptionBus

from reasonkit.config import Settings
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import Protocol as ThinkToolProtocol
from reasonkit.runs import RunService
from reasonkit.server.capacity.run_slots import RunSlots
from reasonkit.server.mcp.runtime import Runtime, ServerStatus


class ServerCore(Protocol):
    settings: Settings
    service: RunService
    metrics: Metrics
    status: ServerStatus
    admission: RunSlots
    deadline: float
    deadlines: dict[str, float]  # tool or profile -> its default deadline (server/mcp/estimates.py)
    protocols: dict[str, ThinkToolProtocol]
    tools: list[types.Tool]
    runtime: Runtime | None
    security: Any  # reasonkit.server.http.security.SecurityPolicy in HTTP mode
    bind_host: str
    settings_loader: Callable[[], Settings] | None
    bus: InMemorySubscriptionBus
    connections: weakref.WeakSet[Any]

    @property
    def registry(self) -> Registry: ...

    def apply(self, settings: Settings, registry: Registry) -> None: ...
