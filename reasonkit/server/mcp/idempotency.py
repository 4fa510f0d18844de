"""Idempotent tool calls: a ThinkTool call may carry `idempotency_key`; a repeat with the same key and
the same arguments within `[server] idempotency_ttl_secs` (`IDEMPOTENCY_TTL`) gets the first run's
result, waiting for it while it runs, and calls no model again. The keys live in the run store's
database (reasonkit/store/idempotency.py), so they hold across processes that share it.

    key = pop_key(args)                                    the argument, checked (InputError)
    repeat = await calls.claim(client, key, fingerprint(...), run)   None: this call runs
    result = await calls.result_of(repeat, wait_s)         the first run's result (None: still running)
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import anyio
import mcp_types as types

from reasonkit.errors import InputError, StoreError
from reasonkit.live_runs import PreparedRun
from reasonkit.runs import RunService
from reasonkit.server.mcp import rendering
from reasonkit.server.mcp.schemas import MAX_IDEMPOTENCY_KEY
from reasonkit.store.idempotency import IdempotencyKeys

POLL_SECS = 0.1
NO_STORE = (
    "idempotency_key needs the run store, and this server does not save runs ([storage] save_runs = "
    "false); call again without idempotency_key or turn save_runs on"
)


def pop_key(args: dict[str, Any]) -> str | None:
    """Remove `idempotency_key` from the arguments: the key, or None when absent or empty."""
    raw = args.pop("idempotency_key", None)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_IDEMPOTENCY_KEY or not raw.strip():
        raise InputError(
            f"input 'idempotency_key' must be a non-blank string of at most {MAX_IDEMPOTENCY_KEY} "
            f"characters (e.g. a UUID), got {str(raw)[:40]!r}"
        )
    return raw


def fingerprint(tool: str, target: str, inputs: dict[str, Any]) -> str:
    """What makes two calls the same: the tool, the profile or protocol, and the checked inputs
    (`deadline_s` and `background` are not part of it)."""
    text = json.dumps({"tool": tool, "target": target, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotentCalls:
    """The server's idempotency keys, in the database of the run service's store."""

    def __init__(self, service: RunService):
        self.service = service
        self._keys: IdempotencyKeys | None = None

    def keys(self) -> IdempotencyKeys:
        """The key table, in the run store's database; `InputError` when the server keeps no store."""
        store = self.service.store
        if store is None:
            raise InputError(NO_STORE)
        if self._keys is None or self._keys.path != store.path:
            self._keys = store.idempotency_keys()
        return self._keys

    async def claim(self, client: str, key: str, print_: str, run: PreparedRun) -> str | None:
        """Claim `key` for `run` and record the run as started (so that a concurrent repeat, in any
        process, finds it); returns None. For a repeat: the first call's run id. Raises InputError
        (`IdempotencyConflict` for other arguments) or StoreError."""
        keys = self.keys()
        ttl = self.service.settings.server.idempotency_ttl_secs
        run_id = run.result.run_id
        claim = await anyio.to_thread.run_sync(keys.claim, client, key, print_, run_id, ttl)
        if not claim.new:
            return claim.run_id
        try:
            await self.service.record_start(run)
        except StoreError:
            await anyio.to_thread.run_sync(keys.release, client, key, run_id)
            raise
        return None

    async def result_of(self, run_id: str, wait_s: float | None) -> types.CallToolResult | None:
        """The result of the first call's run once it has finished, waiting up to `wait_s` seconds
        (None: no wait); None when it is still running then."""
        from reasonkit.engine import RunResult
        from reasonkit.engine.result import FINISHED_STATUSES

        store = self.service.store
        assert store is not None
        until = time.monotonic() + (wait_s or 0.0)
        while True:
            trace = await anyio.to_thread.run_sync(store.get, run_id)
            status = (trace or {}).get("status")
            if trace is not None and status in FINISHED_STATUSES:
                try:
                    return rendering.tool_result(RunResult.model_validate(trace))
                except ValueError:
                    summary, text = rendering.summary_from_trace(trace)
                    return rendering.text_result(text, summary)
            if time.monotonic() >= until:
                return None
            await anyio.sleep(POLL_SECS)

    def close(self) -> None:
        if self._keys is not None:
            self._keys.close()
