"""Runs in every status, made through the real run service (reasonkit/runs.py) with the in-package
FakeProvider (or a subclass that fails or misbehaves on chosen steps) and saved in a real SQLite
run store; `interrupted` is made as the store makes it, by `mark_interrupted()` on a dead owner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from reasonkit.config import load_settings
from reasonkit.engine import Budget
from reasonkit.errors import ProviderError
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.base import LLMRequest, LLMResponse
from reasonkit.providers.fake import FakeProvider
from reasonkit.run_request import CLI_METHOD
from reasonkit.runs import RunService
from reasonkit.store import SqliteRunStore
from reasonkit.store.liveness import current_owner

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)> "quoted" \'single\''


class Misbehaving(FakeProvider):
    """FakeProvider that fails every call of the step whose schema has the property `fail_on`,
    and answers the step whose schema has `degrade_on` with an object missing its required fields
    (the repair call too), so that step ends degraded. Every plain string carries `tag`."""

    def __init__(self, fail_on: str | None = None, degrade_on: str | None = None, tag: str = "", **kw: Any):
        super().__init__(distinct=True, **kw)
        self.fail_on, self.degrade_on, self.tag = fail_on, degrade_on, tag

    def _fill(self, schema: dict[str, Any] | None, tag: str) -> Any:
        return super()._fill(schema, f"{tag} {self.tag}" if self.tag else tag)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        props = (request.schema or {}).get("properties") or {}
        if self.fail_on and self.fail_on in props:
            self.calls += 1
            raise ProviderError("fake", "server", f"upstream said no {HOSTILE}", status=503)
        response = await super().complete(request)
        if self.degrade_on and self.degrade_on in props:
            response.text = json.dumps({"confidence": 0.6, self.degrade_on: f"half an answer {HOSTILE}"})
            response.parsed = None
        return response


def service(data: Path) -> RunService:
    settings = load_settings(environ={"REASONKIT_DATA_DIR": str(data)})
    settings.protocols.dirs = []
    svc = RunService(settings, load_registry([]), metrics=Metrics())
    svc.open_store()
    return svc


async def make_run(
    data: Path,
    kind: str,
    name: str,
    inputs: dict[str, Any],
    provider: FakeProvider,
    budget: Budget | None = None,
    cancel_after: float | None = None,
) -> str:
    """Run `kind`/`name` on `inputs` through the run service; returns the run id."""
    svc = service(data)
    try:
        clean = svc.check(kind, name, inputs, method=CLI_METHOD)  # type: ignore[arg-type]
        run = svc.prepare(kind, name, clean, provider, method=CLI_METHOD)  # type: ignore[arg-type]
        if cancel_after is None:
            await svc.execute(run, budget or Budget())
        else:
            with anyio.move_on_after(cancel_after):
                await svc.execute(run, budget or Budget())
        return run.result.run_id
    finally:
        svc.close()


class _DeadOwnerStore(SqliteRunStore):
    """Records runs as owned by a process of this host that has since ended (a start time no
    process has): what a SIGKILL leaves behind."""

    def owner_columns(self) -> dict[str, Any]:
        owner = current_owner()
        return {"owner_host": owner.host, "owner_pid": owner.pid, "owner_start": "not-a-start-time"}


def make_interrupted(data: Path) -> str:
    """A run left `running` by a process that ended, marked `interrupted` by the store."""
    from tests.store._helpers import make_result

    result = make_result(kind="protocol", name="laserlogic", status="running", n_steps=4, entries=1)
    with _DeadOwnerStore(data / "runs.db") as dead:
        dead.start_trace(result.trace())
    with SqliteRunStore(data / "runs.db") as store:
        assert store.mark_interrupted() == 1
    return result.run_id


async def make_all(data: Path) -> dict[str, str]:
    """One run of every kind the report must show: status -> run id."""
    runs = {
        "complete": await make_run(
            data, "profile", "balanced", {"query": f"Four-day weeks? {HOSTILE}"}, Misbehaving(tag=HOSTILE)
        ),
        # the `validity` step (laserlogic assess) is degraded, `fallacies` fails, so `verdict` is skipped
        "incomplete": await make_run(
            data,
            "protocol",
            "laserlogic",
            {"argument": "All men are mortal. Socrates is a man."},
            Misbehaving(fail_on="fallacies", degrade_on="validity"),
        ),
        "failed": await make_run(
            data, "protocol", "bedrock", {"statement": "What is a prime?"}, Misbehaving(fail_on="confidence")
        ),
        "cancelled": await make_run(
            data,
            "protocol",
            "gigathink",
            {"query": "Slow question"},
            FakeProvider(latency=30),
            cancel_after=0.5,
        ),
    }
    # a profile stopped by its token budget: entries that never started are skipped, with the reason
    runs["budget"] = await make_run(
        data, "profile", "quick", {"query": "Budgeted question"}, FakeProvider(), budget=Budget(tokens=2500)
    )
    runs["interrupted"] = make_interrupted(data)
    return runs


def made_runs(data: Path) -> dict[str, str]:
    """`make_all` from synchronous code (module-scoped fixtures)."""
    data.mkdir(parents=True, exist_ok=True)
    return anyio.run(make_all, data)


def store_trace(data: Path, run_id: str) -> dict[str, Any]:
    store = SqliteRunStore(data / "runs.db")
    try:
        trace = store.get(run_id)
        assert trace is not None
        return trace
    finally:
        store.close()
