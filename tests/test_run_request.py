"""The run entry point (reasonkit/run_request.py): `RunService.run(request, hooks)` walks one call
through check, budget, admission, provider, prepare, idempotency and execute (or the background),
turns every refusal into an outcome and counts each request once."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from reasonkit.config import load_settings
from reasonkit.engine import Budget, Event
from reasonkit.errors import InputError, NoProviderConfigured, ReasonKitError
from reasonkit.live_runs import LiveRun, PreparedRun
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.base import Provider
from reasonkit.providers.fake import FakeProvider
from reasonkit.run_request import BACKGROUND_DEFAULT_SECS, ProgressSink, RunHooks, RunRequest, Slot, Spawn
from reasonkit.runs import RunService

pytestmark = pytest.mark.anyio


def make_service(tmp_path: Path, **storage: Any) -> RunService:
    settings = load_settings(environ={"REASONKIT_DATA_DIR": str(tmp_path / "data")})
    settings.protocols.dirs = []
    for key, value in storage.items():
        setattr(settings.storage, key, value)
    service = RunService(settings, load_registry([]), metrics=Metrics())
    service.metrics.know(["tool"])  # a tool name, as the MCP server registers its tools' names
    service.open_store()
    return service


class Ticket:
    def __init__(self, log: list[str]):
        self.log = log

    def release(self) -> None:
        self.log.append("release")


class Recording(RunHooks):
    """Hooks that note each call, in order; `refuse_at` names the hook that refuses."""

    def __init__(self, provider: Provider | None = None, refuse_at: str = "", replay: object = None):
        self.calls: list[str] = []
        self.llm = provider or FakeProvider()
        self.refuse_at = refuse_at
        self.replay = replay
        self.events: list[str] = []
        self.jobs: list[Callable[[], Coroutine[Any, Any, Any]]] = []

    def _note(self, name: str, error: ReasonKitError | None = None) -> None:
        self.calls.append(name)
        if self.refuse_at == name:
            raise error or InputError(f"refused at {name}")

    def controls(self, request: RunRequest) -> RunRequest:
        self._note("controls")
        inputs = dict(request.inputs)
        target = inputs.pop("target", request.name)
        return replace(request, name=target, inputs=inputs)

    async def admit(self, request: RunRequest, budget: Budget) -> Slot:
        self._note("admit")
        return Ticket(self.calls)

    def provider(self, request: RunRequest) -> Provider:
        self._note("provider", NoProviderConfigured("set a key"))
        return self.llm

    async def prepared(self, run: PreparedRun, budget: Budget) -> None:
        self._note("prepared")

    async def repeat_of(self, request: RunRequest, inputs: dict[str, Any], run: PreparedRun) -> object:
        self._note("repeat_of")
        return self.replay

    def progress(self, live: LiveRun) -> ProgressSink:
        def sink(event: Event) -> None:
            self.events.append(event.type)

        return sink

    def spawner(self) -> Spawn:
        def spawn(job: Callable[[], Coroutine[Any, Any, Any]]) -> None:
            self.calls.append("spawn")
            self.jobs.append(job)

        return spawn

    def started(self, run: PreparedRun) -> None:
        self.calls.append("started")

    def ended(self, run: PreparedRun) -> None:
        self.calls.append("ended")


def requests(service: RunService) -> str:
    body = service.metrics.render()[0].decode()
    return "\n".join(line for line in body.splitlines() if line.startswith("reasonkit_requests_total{"))


async def test_a_foreground_run_walks_the_hooks_in_order_and_is_counted_once(tmp_path):
    service = make_service(tmp_path)
    hooks = Recording()
    request = RunRequest("protocol", "tool", {"argument": "x", "target": "laserlogic"}, method="tool")
    with anyio.fail_after(20):
        outcome = await service.run(request, hooks)
    assert outcome.refusal is None and outcome.result is not None
    assert outcome.result.status == "complete" and outcome.result.name == "laserlogic"
    assert hooks.calls == [
        "controls",
        "admit",
        "provider",
        "prepared",
        "repeat_of",
        "started",
        "ended",
        "release",
    ]
    assert hooks.events[-1] == "run_finished"  # progress went to the hook's sink
    assert requests(service) == (
        'reasonkit_requests_total{method="tool",profile="laserlogic",status="complete"} 1.0'
    )
    assert (
        service.store is not None
        and (service.store.get(outcome.result.run_id) or {}).get("status") == "complete"
    )
    service.close()


@pytest.mark.parametrize(
    ("refuse_at", "label", "released"),
    [
        ("controls", "tool", False),  # before the target is known: the tool's name
        ("admit", "laserlogic", False),  # no slot was taken
        ("provider", "laserlogic", True),
        ("prepared", "laserlogic", True),
        ("repeat_of", "laserlogic", True),
    ],
)
async def test_refusals_come_back_counted_with_the_slot_released(tmp_path, refuse_at, label, released):
    service = make_service(tmp_path)
    hooks = Recording(refuse_at=refuse_at)
    request = RunRequest("protocol", "tool", {"argument": "x", "target": "laserlogic"}, method="tool")
    outcome = await service.run(request, hooks)
    assert isinstance(outcome.refusal, ReasonKitError) and outcome.run is None
    assert ("release" in hooks.calls) is released and "started" not in hooks.calls
    assert (
        requests(service) == f'reasonkit_requests_total{{method="tool",profile="{label}",status="error"}} 1.0'
    )
    assert service.store is not None and service.store.list() == []
    service.close()


async def test_bad_inputs_are_refused_before_any_slot_or_provider(tmp_path):
    service = make_service(tmp_path)
    hooks = Recording()
    outcome = await service.run(RunRequest("protocol", "laserlogic", {"colour": "red"}), hooks)
    assert isinstance(outcome.refusal, InputError) and "colour" in str(outcome.refusal)
    assert hooks.calls == ["controls"]
    service.close()


async def test_a_repeat_gets_the_hooks_answer_and_runs_nothing(tmp_path):
    service = make_service(tmp_path)
    hooks = Recording(replay="the first answer")
    outcome = await service.run(RunRequest("protocol", "laserlogic", {"argument": "x"}), hooks)
    assert outcome.replay == "the first answer" and outcome.run is not None
    assert "started" not in hooks.calls and hooks.calls[-1] == "release"
    assert requests(service) == ""  # as before: the first call's run is the one counted
    service.close()


async def test_a_background_run_is_recorded_handed_off_and_keeps_its_slot(tmp_path):
    service = make_service(tmp_path)
    service.settings.engine.budget_secs = None
    hooks = Recording()
    request = RunRequest("protocol", "laserlogic", {"argument": "x"}, method="tool", background=True)
    outcome = await service.run(request, hooks)
    assert outcome.background and outcome.run is not None and outcome.budget is not None
    assert outcome.budget.seconds == BACKGROUND_DEFAULT_SECS
    run_id = outcome.run.result.run_id
    assert service.live_run(run_id) is outcome.run.live  # run_result finds it at once
    assert service.store is not None and (service.store.get(run_id) or {}).get("status") == "running"
    assert hooks.calls[-1] == "spawn" and "release" not in hooks.calls
    assert 'status="running"} 1.0' in requests(service)
    with anyio.fail_after(20):
        await hooks.jobs[0]()
    assert hooks.calls[-3:] == ["started", "ended", "release"]
    assert hooks.events == []  # a background run reports no progress to the caller that left
    assert (service.store.get(run_id) or {}).get("status") == "complete"
    assert 'status="complete"} 1.0' in requests(service)
    service.close()


async def test_a_caller_without_background_support_is_refused(tmp_path):
    class Plain(RunHooks):
        def provider(self, request: RunRequest) -> Provider:
            return FakeProvider()

    service = make_service(tmp_path, save_runs=False)
    request = RunRequest("protocol", "laserlogic", {"argument": "x"}, background=True)
    outcome = await service.run(request, Plain())
    assert isinstance(outcome.refusal, InputError) and "background" in str(outcome.refusal)
    assert service.live == {}


def test_the_budget_of_a_request(tmp_path):
    service = make_service(tmp_path, save_runs=False)
    service.settings.engine.budget_secs = 100
    assert service.run_budget(RunRequest("profile", "quick", deadline=50)).seconds == 50
    assert service.run_budget(RunRequest("profile", "quick", budget=Budget(tokens=10))) == Budget(
        tokens=10
    )  # what the caller asked for, as asked
    assert service.run_budget(RunRequest("profile", "quick", background=True, deadline=30)).seconds == 30
    assert service.run_budget(RunRequest("profile", "quick", background=True)).seconds == 100
