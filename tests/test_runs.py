"""The run service (reasonkit/runs.py): the one path both shells use to start, record and report a
run. Driven with the in-package FakeProvider and a real SQLite run store."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from reasonkit.config import load_settings
from reasonkit.engine import Budget, Event
from reasonkit.errors import InputError
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.base import LLMRequest, LLMResponse
from reasonkit.providers.fake import FakeProvider
from reasonkit.run_notices import provider_notice
from reasonkit.run_request import CLI_METHOD
from reasonkit.runs import RunService
from reasonkit.store import SqliteRunStore

pytestmark = pytest.mark.anyio


def make_service(tmp_path: Path, store: SqliteRunStore | None = None, **storage: Any) -> RunService:
    settings = load_settings(environ={"REASONKIT_DATA_DIR": str(tmp_path / "data")})
    settings.protocols.dirs = []
    for key, value in storage.items():
        setattr(settings.storage, key, value)
    service = RunService(settings, load_registry([]), store=store, metrics=Metrics())
    service.open_store()
    return service


class GatedStore(SqliteRunStore):
    """A store whose writes wait for a gate: a slow disk."""

    def __init__(self, path: Path, gate: threading.Event):
        super().__init__(path)
        self.gate = gate
        self.writes = 0

    def save_trace(self, trace: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        self.gate.wait(10)
        super().save_trace(trace, *args, **kwargs)
        self.writes += 1

    def start_trace(self, trace: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        self.gate.wait(10)
        super().start_trace(trace, *args, **kwargs)
        self.writes += 1


async def test_progress_never_waits_for_a_store_write(tmp_path):
    gate = threading.Event()
    (tmp_path / "data").mkdir()
    store = GatedStore(tmp_path / "data" / "runs.db", gate)
    service = make_service(tmp_path, store=store)
    seen: list[str] = []
    writes_at_end: list[int] = []

    def progress(event: Event) -> None:
        seen.append(event.type)
        if event.type == "run_finished":
            writes_at_end.append(store.writes)
            gate.set()  # the disk catches up only now

    clean = service.check("protocol", "laserlogic", {"argument": "All men are mortal."}, method=CLI_METHOD)
    run = service.prepare("protocol", "laserlogic", clean, FakeProvider(), method=CLI_METHOD)
    with anyio.fail_after(20):
        result = await service.execute(run, Budget(), progress)
    assert result.status == "complete"
    assert seen.count("step_finished") >= 3 and seen[-1] == "run_finished"
    assert writes_at_end == [0]  # every event reached the caller while no write had gone through
    assert (store.get(result.run_id) or {}).get("status") == "complete"  # and the final state was still saved
    service.close()


class CountingStore(SqliteRunStore):
    """A real store that counts the trace writes a run makes."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.written: list[str] = []

    def start_trace(self, trace: dict[str, Any]) -> None:
        self.written.append("start")
        super().start_trace(trace)

    def save_trace(self, trace: dict[str, Any]) -> None:
        self.written.append(trace["status"])
        super().save_trace(trace)


async def test_a_quick_run_is_written_once(tmp_path):
    """Saves are coalesced per run, not per event (issue 26): a run over within the recorder's first
    delay (a 3-step laserlogic on the fake provider) is one write, its final state, where each
    step, entry and the start used to be a write of the whole trace."""
    (tmp_path / "data").mkdir()
    store = CountingStore(tmp_path / "data" / "runs.db")
    service = make_service(tmp_path, store=store)
    clean = service.check("protocol", "laserlogic", {"argument": "All men are mortal."}, method=CLI_METHOD)
    run = service.prepare("protocol", "laserlogic", clean, FakeProvider(), method=CLI_METHOD)
    with anyio.fail_after(20):
        result = await service.execute(run, Budget())
    assert result.status == "complete" and len(result.all_steps()) >= 3
    assert store.written == ["complete"]
    assert store.get(result.run_id) == result.trace()
    service.close()


async def test_inputs_are_checked_once_and_rejections_record_nothing(tmp_path):
    service = make_service(tmp_path)
    with pytest.raises(InputError, match="no input 'colour'"):
        service.check("protocol", "laserlogic", {"argument": "x", "colour": "red"}, method="laserlogic")
    with pytest.raises(InputError, match="unknown profile 'nope'"):
        service.check("profile", "nope", {"query": "x"}, method="think")
    assert service.check("profile", "quick", {"query": "q"}, method="think") == {"query": "q"}
    assert service.store is not None and service.store.list() == []
    service.close()


async def test_an_engine_crash_is_recorded_as_failed_not_raised(tmp_path):
    class Broken(FakeProvider):
        async def complete(self, request: LLMRequest) -> LLMResponse:
            raise RuntimeError("boom")

    service = make_service(tmp_path)
    clean = service.check("protocol", "laserlogic", {"argument": "x"}, method=CLI_METHOD)
    run = service.prepare("protocol", "laserlogic", clean, Broken(), method=CLI_METHOD)
    result = await service.execute(run, Budget())
    assert result.status == "failed"
    assert service.store is not None and (service.store.get(result.run_id) or {}).get("status") == "failed"
    assert service.live == {} and service.inflight == 0
    service.close()


async def test_a_cancelled_run_is_recorded_as_cancelled(tmp_path):
    service = make_service(tmp_path)
    clean = service.check("protocol", "laserlogic", {"argument": "x"}, method=CLI_METHOD)
    run = service.prepare("protocol", "laserlogic", clean, FakeProvider(latency=30), method=CLI_METHOD)
    with anyio.move_on_after(0.5):
        await service.execute(run, Budget())
    assert run.result.status == "cancelled"
    assert (
        service.store is not None
        and (service.store.get(run.result.run_id) or {}).get("status") == "cancelled"
    )
    service.close()


@pytest.mark.parametrize("when", ["running", "before it starts"])
async def test_a_run_stopped_from_outside_ends_cancelled_with_the_reason(tmp_path, when):
    """`LiveRun.stop` (a task's or run_result's cancel, from any replica): the run ends as
    `cancelled` for the reason given, and `execute` returns it instead of raising (its caller was
    not cancelled)."""
    service = make_service(tmp_path)
    clean = service.check("protocol", "laserlogic", {"argument": "x"}, method=CLI_METHOD)
    run = service.prepare("protocol", "laserlogic", clean, FakeProvider(latency=30), method=CLI_METHOD)
    if when == "before it starts":
        assert run.live.stop("asked to stop")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            if when == "running":
                tg.start_soon(lambda: _stop_soon(run.live))
            result = await service.execute(run, Budget())
    assert result.status == "cancelled" and result.stop_reason == "asked to stop"
    stored = service.store.get(result.run_id) if service.store is not None else None
    assert stored is not None and stored["status"] == "cancelled" and stored["stop_reason"] == "asked to stop"
    assert not run.live.stop("again")  # finished: nothing to stop
    service.close()


async def _stop_soon(live: Any) -> None:
    await anyio.sleep(0.3)
    assert live.stop("asked to stop")


async def test_runs_are_counted_in_the_metrics(tmp_path):
    service = make_service(tmp_path, save_runs=False)
    assert service.store is None
    clean = service.check("protocol", "laserlogic", {"argument": "x"}, method="laserlogic")
    run = service.prepare("protocol", "laserlogic", clean, FakeProvider(), method="laserlogic")
    await service.execute(run, Budget())
    body = service.metrics.render()[0].decode()
    assert 'reasonkit_requests_total{method="laserlogic",profile="laserlogic",status="complete"} 1.0' in body
    assert 'reasonkit_llm_tokens_total{provider="fake",type="input"}' in body  # the metered provider
    assert 'reasonkit_step_duration_seconds_count{protocol="laserlogic"' in body


def test_the_time_budget_is_capped_by_a_deadline(tmp_path):
    service = make_service(tmp_path, save_runs=False)
    service.settings.engine.budget_secs = 100
    assert service.budget(None).seconds == 100
    assert service.budget(None, deadline=50).seconds == 50
    assert service.budget(Budget(tokens=10), deadline=50) == Budget(seconds=50, tokens=10)


async def test_runs_on_the_local_model_get_small_model_caps_and_say_so(tmp_path):
    from reasonkit.render import render_markdown, render_text

    service = make_service(tmp_path, save_runs=False)
    local = FakeProvider(name="local", model="SmolLM2-135M-Instruct.Q4_1")
    clean = service.check("protocol", "gigathink", {"query": "q"}, method=CLI_METHOD)
    run = service.prepare("protocol", "gigathink", clean, local, method=CLI_METHOD)
    result = await service.execute(run, Budget())
    assert result.status in ("complete", "incomplete")
    assert any("small-model caps" in note and "gigathink" in note for note in result.notes)
    assert result.summary()["notes"] == result.notes
    assert "small-model caps" in render_text(result) and "small-model caps" in render_markdown(result)
    dimensions = next(s for s in result.entries[0].steps if s.step_id == "dimensions")
    assert len(dimensions.output["perspectives"]) <= service.settings.llm.local.max_items
    # other providers run the protocol as written
    other = service.prepare("protocol", "gigathink", clean, FakeProvider(), method=CLI_METHOD)
    assert (await service.execute(other, Budget())).notes == []


async def test_the_local_notice_is_for_the_fallback_only(tmp_path):
    service = make_service(tmp_path, save_runs=False)
    local = FakeProvider(name="local", model="SmolLM2-135M-Instruct.Q4_1")
    notice = provider_notice(service.settings, local)
    assert notice is not None and "SmolLM2-135M-Instruct.Q4_1" in notice and "OPENAI_BASE_URL" in notice
    assert provider_notice(service.settings, FakeProvider()) is None
    service.settings.llm.default_provider = "local"  # chosen on purpose: nothing to say
    assert provider_notice(service.settings, local) is None
