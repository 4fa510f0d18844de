"""What `rk think` adds around its one run (reasonkit/run_request.py): apart from think.py because
the CLI imports only click at start-up, and these hooks need the run service's types."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasonkit.cli.common import warn
from reasonkit.run_notices import budget_notice, provider_notice
from reasonkit.run_request import ProgressSink, RunHooks, RunRequest

if TYPE_CHECKING:
    from reasonkit.cli.progress import ProgressDisplay
    from reasonkit.engine import Budget
    from reasonkit.live_runs import LiveRun, PreparedRun
    from reasonkit.providers.base import Provider
from reasonkit.runs import RunService


class ThinkHooks(RunHooks):
    """The provider `--provider`/`--model` name (or the configured one), the warnings a user should
    read before the run starts, progress on stderr, and the prepared run (Ctrl-C shows what
    finished). No admission, idempotency or background runs: one run per process."""

    def __init__(
        self, service: RunService, provider: str | None, model: str | None, display: ProgressDisplay
    ):
        self.service = service
        self.choice = (provider, model)
        self.display = display
        self.llm: Provider | None = None  # built by `provider`; the CLI closes it after the run
        self.run: PreparedRun | None = None

    def provider(self, request: RunRequest) -> Provider:
        from reasonkit.providers.stack import build_provider

        llm = self.llm = build_provider(self.service.settings, *self.choice)
        notice = provider_notice(self.service.settings, llm)
        if notice:
            warn(notice)
        return llm

    async def prepared(self, run: PreparedRun, budget: Budget) -> None:
        """The store is opened only now: a call refused for its inputs or provider leaves none."""
        self.run = run
        if self.display.streaming:  # a terminal: show replies as they are written
            run.engine.on_text = self.display.on_text
        service = self.service
        service.open_store()
        if service.store_problem:
            warn(service.store_problem)
        notice = budget_notice(self.llm, budget) if self.llm is not None else None
        if notice:
            warn(notice)

    def progress(self, live: LiveRun) -> ProgressSink:
        return self.display.on_event
