"""Run slots: how many tool runs one server process takes on at once (admission of runs; the
HTTP gate, reasonkit/server/http/gate.py, admits requests).

Every ThinkTool call (foreground or background; `run_result` is not a run) asks the gate for a slot
before its run starts and gives it back when the run ends:

- `[server] max_concurrent_runs` slots per process (unset: 16 per CPU, between 16 and 256). A full
  gate answers at once: HTTP 503 with `Retry-After` (the HTTP gate refuses before the MCP SDK
  parses anything), or the tool error "busy, retry in N s" when the call got past that check.
- `[server] admission_queue` calls may wait for a slot, first come first served, for at most
  `admission_queue_timeout_secs` and never more than a quarter of the call's deadline: work that
  would spend its deadline waiting is refused instead of admitted to time out.
- `[server] max_background_runs_per_client` background runs per client (bearer token, else IP).
- `[server] max_runs_per_principal` runs (foreground and background) per principal that is not an
  admin (unset: half of `max_concurrent_runs`), so one principal cannot fill the process.
- While draining (SIGTERM) nothing new is admitted.
- With `[database.redis] url` set, a background run (and, with `[server] max_concurrent_runs_cluster`,
  every run) also takes a slot in Redis, so those caps hold across replicas
  (shared_run_slots.py). Such calls are admitted by `admit` (Redis is awaited), not by the HTTP
  gate's `try_admit`; a full shared count is the tool error "busy, retry in N s".

`Retry-After` is an estimate: the recent mean run time, halved (a slot frees up about then when the
gate is full of runs of that length), between 1 and 30 s. Outcomes are counted in
`reasonkit_admission_total{outcome,reason}`.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from reasonkit.config import Settings
from reasonkit.errors import Busy, SlotsTaken
from reasonkit.observability.metrics import Metrics
from reasonkit.principal import LOCAL, Principal
from reasonkit.server.capacity.shared_run_slots import shared_run_slots

RETRY_MIN_SECS, RETRY_MAX_SECS = 1, 30


def default_max_runs(cpus: int | None = None) -> int:
    """16 runs per CPU, at least 16 and at most 256: a run mostly waits on its provider, but each
    call costs the process some CPU, and past this many the runs start to miss their deadlines."""
    return max(16, min(256, 16 * (cpus or os.cpu_count() or 1)))


def max_runs(settings: Settings) -> int:
    return settings.server.max_concurrent_runs or default_max_runs()


def max_runs_per_principal(settings: Settings) -> int:
    """A principal's share: `[server] max_runs_per_principal`, else half the process's slots."""
    return settings.server.max_runs_per_principal or max(1, max_runs(settings) // 2)


def max_provider_calls(settings: Settings) -> int:
    return settings.server.max_inflight_provider_calls or 4 * max_runs(settings)


@dataclass
class Ticket:
    """One admitted run's slot; `release()` gives it back (once)."""

    gate: RunSlots
    client: str
    background: bool
    started: float
    capped: bool = False  # counted against the client's max_runs_per_principal
    released: bool = False
    slot: Any = None  # its slot in Redis (reasonkit.server.capacity.shared_run_slots.Slot), if any

    def release(self) -> None:
        if not self.released:
            self.released = True
            if self.slot is not None:
                self.slot.release()
            self.gate._release(self)


class RunSlots:
    """The gate of one process. `settings` is read at every call (a SIGHUP reload changes limits)."""

    def __init__(self, settings: Callable[[], Settings], metrics: Metrics):
        self.settings = settings
        self.metrics = metrics
        self.running = 0
        self.background: dict[str, int] = {}
        self.capped: dict[str, int] = {}  # runs of principals under max_runs_per_principal
        self.waiters: deque[anyio.Event] = deque()
        self.draining = False
        self._mean_secs = 10.0

    # ------------------------------------------------------------------ answers
    def retry_after(self) -> int:
        return max(RETRY_MIN_SECS, min(RETRY_MAX_SECS, math.ceil(self._mean_secs / 2)))

    def full(self) -> bool:
        """No free slot and no room in the queue: a new run would be refused."""
        s = self.settings().server
        return self.draining or (
            self.running >= max_runs(self.settings()) and len(self.waiters) >= s.admission_queue
        )

    def room(self) -> int:
        """How many more runs this process would take on now, at once or in its queue (0: full)."""
        if self.draining:
            return 0
        settings = self.settings()
        free = max(0, max_runs(settings) - self.running)
        return free + max(0, settings.server.admission_queue - len(self.waiters))

    def _refuse(self, reason: str, message: str, *, count: bool = True) -> Busy:
        """The `Busy` refusal (counted in the admission metric unless `count` is False: a check
        whose refusal may never be raised)."""
        secs = self.retry_after()
        busy = Busy(f"busy, retry in {secs} s: {message}", reason, secs)
        return self._count(busy) if count else busy

    def _count(self, busy: Busy) -> Busy:
        self.metrics.admission.labels(outcome="rejected", reason=busy.reason).inc()
        return busy

    # ------------------------------------------------------------------ admit / release
    def try_admit(self, client: str, *, background: bool, capped: bool = False) -> Ticket | None:
        """A slot at once, or None: the gate is full (or has a queue), or the call must go through
        `admit` to be refused with its reason. The HTTP gate reserves slots this way, so
        a burst is sorted out before the MCP SDK spends any work on it. A call that needs a slot
        in Redis goes through `admit`. `capped`: the client's principal is held to
        `max_runs_per_principal` (not an admin)."""
        if self._shared_counts(self.settings(), background):
            return None
        return self._try_local(client, background, capped)

    def _try_local(self, client: str, background: bool, capped: bool) -> Ticket | None:
        settings = self.settings()
        if self.draining or self.waiters or self.running >= max_runs(settings):
            return None
        if self._over_share(settings, client, background, capped) is not None:
            return None
        self.running += 1
        self.metrics.admission.labels(outcome="admitted", reason="").inc()
        return self._ticket(client, background, capped)

    def _over_share(self, settings: Settings, client: str, background: bool, capped: bool) -> Busy | None:
        """The refusal of a client over its own share (background runs, its principal's runs), else
        None; it names the cap and when to retry."""
        s = settings.server
        if background and self.background.get(client, 0) >= s.max_background_runs_per_client:
            return self._refuse(
                "background_per_client",
                f"this client already has {s.max_background_runs_per_client} background runs going "
                "([server] max_background_runs_per_client); wait for one with run_result",
                count=False,
            )
        share = max_runs_per_principal(settings)
        if capped and self.capped.get(client, 0) >= share:
            return self._refuse(
                "principal_share",
                f"this principal already has {share} runs going ([server] max_runs_per_principal); "
                "retry when one of them ends",
                count=False,
            )
        return None

    async def admit(self, client: str, *, background: bool, deadline: float, capped: bool = False) -> Ticket:
        """A slot for one run, or `Busy`. Waits only when the queue has room, and only as long as
        the call can afford (see the module docstring). `capped`: as for `try_admit`."""
        settings = self.settings()
        s = settings.server
        cap = max_runs(settings)
        if self.draining:
            raise self._refuse("draining", "the server is shutting down; retry on another instance")
        over = self._over_share(settings, client, background, capped)
        if over is not None:
            raise self._count(over)
        now = self._try_local(client, background, capped)
        if now is not None:
            return await self._share(now, settings)
        if len(self.waiters) >= s.admission_queue:
            raise self._refuse(
                "capacity", f"{cap} runs in progress ([server] max_concurrent_runs); the queue is full"
            )
        wait = min(s.admission_queue_timeout_secs, deadline / 4)
        turn = anyio.Event()
        self.waiters.append(turn)
        try:
            with anyio.move_on_after(wait):
                await turn.wait()
        except BaseException:
            self._abandon(turn)
            raise
        if not turn.is_set():
            self._abandon(turn)
            raise self._refuse("queue_timeout", f"no run slot freed up within {wait:g} s")
        self.metrics.admission.labels(outcome="queued", reason="").inc()
        over = self._over_share(settings, client, background, capped)
        if over is not None:
            self._release_slot()
            raise self._count(over)
        return await self._share(self._ticket(client, background, capped), settings)

    def _shared_counts(self, settings: Settings, background: bool) -> bool:
        """Whether a run takes a slot in Redis: a background run, or any run with a cluster cap."""
        wanted = background or settings.server.max_concurrent_runs_cluster is not None
        return wanted and shared_run_slots(settings) is not None

    async def _share(self, ticket: Ticket, settings: Settings) -> Ticket:
        """The ticket with its slot in Redis, or `Busy` (the local slot is given back)."""
        shared = shared_run_slots(settings) if self._shared_counts(settings, ticket.background) else None
        if shared is None:
            return ticket
        s = settings.server
        try:
            ticket.slot = await shared.acquire(
                ticket.client,
                background=ticket.background,
                background_cap=s.max_background_runs_per_client,
                cluster_cap=s.max_concurrent_runs_cluster,
            )
        except BaseException as exc:
            ticket.released = True
            self._forget(ticket)
            if not isinstance(exc, SlotsTaken):
                raise
            if exc.count == "cluster":
                raise self._refuse(
                    "cluster_capacity",
                    f"{s.max_concurrent_runs_cluster} runs in progress on all replicas "
                    "([server] max_concurrent_runs_cluster)",
                ) from None
            raise self._refuse(
                "background_per_client",
                f"this client already has {s.max_background_runs_per_client} background runs going on "
                "all replicas ([server] max_background_runs_per_client); wait for one with run_result",
            ) from None
        return ticket

    def _ticket(self, client: str, background: bool, capped: bool = False) -> Ticket:
        if background:
            self.background[client] = self.background.get(client, 0) + 1
        if capped:
            self.capped[client] = self.capped.get(client, 0) + 1
        return Ticket(self, client, background, anyio.current_time(), capped)

    def _abandon(self, turn: anyio.Event) -> None:
        """A waiter leaves: out of the queue, or, when its turn came meanwhile, its slot goes on."""
        if turn.is_set():
            self._release_slot()
        else:
            try:
                self.waiters.remove(turn)
            except ValueError:
                pass

    def _release(self, ticket: Ticket) -> None:
        took = max(0.0, anyio.current_time() - ticket.started)
        self._mean_secs = 0.9 * self._mean_secs + 0.1 * took
        self._forget(ticket)

    def _forget(self, ticket: Ticket) -> None:
        """Give back a ticket's local counts (its run slot goes to the next waiter)."""
        for counted, counts in ((ticket.background, self.background), (ticket.capped, self.capped)):
            if counted:
                left = counts.get(ticket.client, 1) - 1
                if left > 0:
                    counts[ticket.client] = left
                else:
                    counts.pop(ticket.client, None)
        self._release_slot()

    def _release_slot(self) -> None:
        if self.waiters:  # hand the slot to the first waiter (the running count stays)
            self.waiters.popleft().set()
        else:
            self.running = max(0, self.running - 1)


def _request_state(ctx: object) -> dict[str, object]:
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None)
    state = scope.get("state") if isinstance(scope, dict) else None
    return state if isinstance(state, dict) else {}


def client_key(ctx: object) -> str:
    """Whom a tool call counts against: the bearer token's id or the peer address the HTTP
    gate recorded (`CLIENT_KEY`), else the HTTP peer, else `local` (stdio)."""
    key = _request_state(ctx).get(CLIENT_KEY)
    if key:
        return str(key)
    client = getattr(getattr(ctx, "request", None), "client", None)
    host = getattr(client, "host", None)
    return f"ip:{host}" if host else "local"


def principal_of(ctx: object) -> Principal:
    """Who makes an MCP request: the principal the HTTP gate recorded (`PRINCIPAL_KEY`); `local` for
    stdio (no HTTP request). An HTTP request without one (never past the gate) may see nothing."""
    if getattr(ctx, "request", None) is None:
        return LOCAL
    principal = _request_state(ctx).get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else NOBODY


def claim_ticket(ctx: object) -> Ticket | None:
    """The slot the HTTP gate reserved for this call (`TICKET_KEY`), now the handler's to
    release; None when there is none (stdio, or the call waits in the queue)."""
    ticket = _request_state(ctx).pop(TICKET_KEY, None)
    return ticket if isinstance(ticket, Ticket) else None


TICKET_KEY = "rk_ticket"  # in the request scope's state: the run slot the HTTP gate reserved
CLIENT_KEY = "rk_client"  # ... and whom the call counts against (token principal, else IP)
PRINCIPAL_KEY = "rk_principal"  # ... and who makes it (reasonkit.principal.Principal)
NOBODY = Principal("", admin=False, source="local")  # owns no run: `may_see` is False for every owner
