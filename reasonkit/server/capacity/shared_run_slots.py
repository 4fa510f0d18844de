"""Run slots counted for every replica together through Redis (`[database.redis] url` / REDIS_URL).

With Redis configured, the run-slot gate (run_slots.py) also takes a slot in Redis:

- `[server] max_background_runs_per_client` holds for a client across all replicas (without Redis
  each replica would give the client that many background runs);
- `[server] max_concurrent_runs_cluster`, when set, caps the tool runs of all replicas together.

A slot is one member of a sorted set (one set per client for background runs, one for all runs),
scored by its lease's expiry on the Redis clock. A Lua script prunes expired members, checks the
counts and adds the slot atomically. The replica renews its slots' leases every third of
`lease_secs` (a daemon thread) and removes a slot when its run ends, so a replica that dies holds its
slots for at most one lease.

Redis failing never fails a call: an error or a Redis slower than `[database.redis] timeout_secs`
admits the run on the process's own counts (which always apply too), logged with a warning, and
Redis is not tried again for `retry_secs`. Runs admitted meanwhile are not counted in Redis.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio
from loguru import logger

from reasonkit.errors import SlotsTaken
from reasonkit.server.capacity.shared_limits import _redact

KEY_PREFIX = "reasonkit:admission:"

# KEYS: the sets to take a slot in; ARGV: member, lease (ms), then one cap per key.
# Returns 0 when the slot was taken, else the 1-based index of the first full set.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[1])
  redis.call('PEXPIRE', key, 2 * lease)
end
return 0
"""

# KEYS: sets; ARGV: lease (ms), then one member per key. Extends the leases of live slots.
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, 2 * lease)
end
return 0
"""


@dataclass
class Slot:
    """One run's slot in Redis: `(key, member)` pairs; `release()` removes them (once)."""

    owner: SharedRunSlots
    entries: list[tuple[str, str]] = field(default_factory=list)
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.owner._drop(self)


class SharedRunSlots:
    """Slots in Redis for one process. `acquire` is awaited by the gate; the rest is synchronous."""

    def __init__(
        self,
        url: str,
        *,
        lease_secs: float = 30.0,
        timeout: float = 0.5,
        retry_secs: float = 5.0,
        key_prefix: str = KEY_PREFIX,
    ):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.lease_secs = lease_secs
        self.retry_secs = retry_secs
        self.prefix = key_prefix
        self.where = _redact(url)
        self.redis = redis.Redis.from_url(  # no retries of its own: a down Redis costs one failed call
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self.acquire_script = self.redis.register_script(ACQUIRE)
        self.renew_script = self.redis.register_script(RENEW)
        self.down_until = 0.0  # time.monotonic() before which Redis is not tried
        self.failures = 0
        self.held: dict[int, Slot] = {}
        self.to_release: list[Slot] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._keeper: threading.Thread | None = None
        atexit.register(self.flush)

    # ------------------------------------------------------------------ keys
    def background_key(self, client: str) -> str:
        """The client's background-run set; the client key is hashed (it may name a token)."""
        return f"{self.prefix}background:{hashlib.sha256(client.encode()).hexdigest()[:24]}"

    def runs_key(self) -> str:
        return f"{self.prefix}runs"

    # ------------------------------------------------------------------ acquire / release
    async def acquire(
        self, client: str, *, background: bool, background_cap: int, cluster_cap: int | None
    ) -> Slot | None:
        """A slot in every shared count that applies, or `SlotsTaken`; None when there is none to
        take or Redis is down (the run is admitted on the process's own counts)."""
        counts = (
            [(self.background_key(client), background_cap, "background_per_client")] if background else []
        )
        if cluster_cap:
            counts.append((self.runs_key(), cluster_cap, "cluster"))
        if not counts or time.monotonic() < self.down_until:
            return None
        member = uuid.uuid4().hex
        try:
            full = await anyio.to_thread.run_sync(self._acquire, [k for k, _, _ in counts], member, counts)
        except Exception as exc:  # noqa: BLE001 - Redis down or slow: per-process counts for a while
            self._failed("admit on this process's counts only", exc)
            return None
        if full:
            raise SlotsTaken(counts[full - 1][2])
        slot = Slot(self, [(key, member) for key, _, _ in counts])
        with self._lock:
            self.held[id(slot)] = slot
            self._ensure_keeper()
        return slot

    def _acquire(self, keys: list[str], member: str, counts: list[tuple[str, int, str]]) -> int:
        lease_ms = int(self.lease_secs * 1000)
        return int(self.acquire_script(keys=keys, args=[member, lease_ms, *[cap for _, cap, _ in counts]]))

    def _drop(self, slot: Slot) -> None:
        """A run ended: its slot is removed from Redis by the keeper thread (at once)."""
        with self._lock:
            self.held.pop(id(slot), None)
            self.to_release.append(slot)
            self._ensure_keeper()
        self._wake.set()

    def flush(self) -> None:
        """Remove released slots from Redis now (the keeper does this; also at process exit)."""
        with self._lock:
            slots, self.to_release = self.to_release, []
        if not slots:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for slot in slots:
                for key, member in slot.entries:
                    pipe.zrem(key, member)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the slots' leases expire on their own
            logger.debug("shared admission: releasing slots in Redis failed ({})", type(exc).__name__)

    def renew(self) -> None:
        """Extend the leases of this process's live slots."""
        with self._lock:
            entries = [entry for slot in self.held.values() for entry in slot.entries]
        if not entries or time.monotonic() < self.down_until:
            return
        try:
            lease_ms = int(self.lease_secs * 1000)
            self.renew_script(keys=[k for k, _ in entries], args=[lease_ms, *[m for _, m in entries]])
        except Exception as exc:  # noqa: BLE001 - retried at the next renewal
            self._failed("could not renew its slots' leases", exc)

    # ------------------------------------------------------------------ the keeper thread
    def _ensure_keeper(self) -> None:  # with self._lock held
        if self._keeper is None:
            self._keeper = threading.Thread(target=self._keep, name="reasonkit admission slots", daemon=True)
            self._keeper.start()

    def _keep(self) -> None:
        """Release ended slots at once, renew live ones every third of the lease; stop when idle."""
        interval = self.lease_secs / 3
        next_renewal = time.monotonic() + interval
        while True:
            self._wake.wait(max(0.0, next_renewal - time.monotonic()))
            self._wake.clear()
            self.flush()
            if time.monotonic() >= next_renewal:
                self.renew()
                next_renewal = time.monotonic() + interval
            with self._lock:
                if not self.held and not self.to_release:
                    self._keeper = None
                    return

    def _failed(self, what: str, exc: Exception) -> None:
        self.failures += 1
        self.down_until = time.monotonic() + self.retry_secs
        logger.warning(
            "shared admission: Redis at {} failed ({}); {} for {:g}s",
            self.where,
            type(exc).__name__,
            what,
            self.retry_secs,
        )

    def close(self) -> None:
        """Release what is pending and close the connections (a server process just exits)."""
        self.flush()
        atexit.unregister(self.flush)
        self.redis.close()


_shared: dict[tuple[str, float], SharedRunSlots | None] = {}


def shared_run_slots(settings: Any) -> SharedRunSlots | None:
    """The process's SharedRunSlots for `[database.redis] url` (one per URL and lease), else None."""
    secret = settings.database.redis.url
    url = secret.get_secret_value().strip() if secret is not None else ""
    if not url:
        return None
    redis = settings.database.redis
    key = (url, settings.storage.lease_secs)
    if key not in _shared:
        try:
            _shared[key] = SharedRunSlots(
                url, lease_secs=key[1], timeout=redis.timeout_secs, retry_secs=redis.retry_secs
            )
        except Exception as exc:  # noqa: BLE001 - e.g. a URL redis-py does not take: stay per process
            logger.warning("shared admission unavailable ({}); counting per process", type(exc).__name__)
            _shared[key] = None
    return _shared[key]
