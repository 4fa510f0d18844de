"""One view of a run, built once from a `RunResult` or a stored trace, that every surface reads.

The text and markdown renderings (reasonkit/render.py), the MCP tool results
(reasonkit/server/mcp/rendering.py), the HTML report and the terminal views (reasonkit/viewer/) and
`rk runs show` (reasonkit/cli/run_commands.py) all take a `RunView`, so a field is read from a
trace in one place and a trace from another version (missing keys, nulls) is tolerated in one
place too. The names are the trace's own (`confidence_breakdown`, `budget_note`, ...): a field added
to `RunResult` is added here once, and tests/presentation/test_surfaces.py fails until every
surface shows it or says why it does not.

Only the standard library is imported: the MCP server builds views without loading the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reasonkit.engine.result import RunResult


def _str(d: dict[str, Any], key: str, default: str = "") -> str:
    value = d.get(key)
    return default if value is None else str(value)


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    value = d.get(key)
    return None if value is None or value == "" else str(value)


def _num(d: dict[str, Any], key: str) -> float | None:
    value = d.get(key)
    return None if value is None else float(value)


def _zero(d: dict[str, Any], key: str) -> float:
    return float(d.get(key) or 0.0)


def _dicts(d: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [x for x in d.get(key) or [] if isinstance(x, dict)]


def _strs(d: dict[str, Any], key: str) -> list[str]:
    return [str(x) for x in d.get(key) or []]


@dataclass(frozen=True)
class TokensView:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    @classmethod
    def of(cls, tokens: Any) -> TokensView:
        t = tokens if isinstance(tokens, dict) else {}
        return cls(*(int(t.get(k) or 0) for k in ("input", "output", "cache_read", "cache_write")))


@dataclass(frozen=True)
class FactorView:
    """One signal of a confidence breakdown (the deltas add up to the confidence)."""

    signal: str
    delta: float
    detail: str = ""

    @classmethod
    def of(cls, d: dict[str, Any]) -> FactorView:
        return cls(_str(d, "signal", "?"), _zero(d, "delta"), _str(d, "detail"))


def _factors(d: dict[str, Any]) -> list[FactorView]:
    return [FactorView.of(f) for f in _dicts(d, "confidence_breakdown")]


@dataclass(frozen=True)
class CallView:
    """One model call of a step: who answered, how long, what it cost, what happened on the way."""

    purpose: str
    provider: str = ""
    model: str = ""
    duration_ms: float = 0.0
    tokens: TokensView = field(default_factory=TokensView)
    cost_usd: float = 0.0
    cached: bool = False
    cache_layer: str | None = None
    attempts: int = 0
    fallbacks: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    raw_response: str = ""

    @classmethod
    def of(cls, d: dict[str, Any]) -> CallView:
        return cls(
            purpose=_str(d, "purpose", "call"),
            provider=_str(d, "provider"),
            model=_str(d, "model"),
            duration_ms=_zero(d, "duration_ms"),
            tokens=TokensView.of(d.get("tokens")),
            cost_usd=_zero(d, "cost_usd"),
            cached=bool(d.get("cached")),
            cache_layer=_opt_str(d, "cache_layer"),
            attempts=int(d.get("attempts") or 0),
            fallbacks=[{str(k): str(v) for k, v in fb.items()} for fb in _dicts(d, "fallbacks")],
            error=_opt_str(d, "error"),
            raw_response=_str(d, "raw_response"),
        )


@dataclass(frozen=True)
class StepView:
    """A step (or one `for_each` item of it: `item_index` set, its own calls and output)."""

    step_id: str
    entry: str = ""
    kind: str = ""
    item_index: int | None = None
    status: str = "?"
    confidence: float | None = None
    confidence_breakdown: list[FactorView] = field(default_factory=list)
    duration_ms: float | None = None
    tokens: TokensView = field(default_factory=TokensView)
    cost_usd: float = 0.0
    provider: str = ""
    model: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    calls: list[CallView] = field(default_factory=list)
    items: list[StepView] = field(default_factory=list)
    output: Any = None
    system: str = ""
    prompt: str = ""
    raw_response: str = ""
    started_at: float | None = None
    finished_at: float | None = None

    @classmethod
    def of(cls, d: dict[str, Any]) -> StepView:
        index = d.get("item_index")
        return cls(
            step_id=_str(d, "step_id", "?"),
            entry=_str(d, "entry"),
            kind=_str(d, "kind"),
            item_index=None if index is None else int(index),
            status=_str(d, "status", "?"),
            confidence=_num(d, "confidence"),
            confidence_breakdown=_factors(d),
            duration_ms=_num(d, "duration_ms"),
            tokens=TokensView.of(d.get("tokens")),
            cost_usd=_zero(d, "cost_usd"),
            provider=_str(d, "provider"),
            model=_str(d, "model"),
            error=_opt_str(d, "error"),
            notes=_strs(d, "notes"),
            calls=[CallView.of(c) for c in _dicts(d, "calls")],
            items=[StepView.of(i) for i in _dicts(d, "items")],
            output=d.get("output"),
            system=_str(d, "system"),
            prompt=_str(d, "prompt"),
            raw_response=_str(d, "raw_response"),
            started_at=_num(d, "started_at"),
            finished_at=_num(d, "finished_at"),
        )


@dataclass(frozen=True)
class EntryView:
    """One protocol run: the whole run of a tool, or one entry of a profile's chain."""

    entry: str
    protocol: str = "?"
    status: str = "?"
    inputs: dict[str, Any] = field(default_factory=dict)
    answer: str = ""
    confidence: float | None = None
    confidence_breakdown: list[FactorView] = field(default_factory=list)
    min_confidence: float = 0.0
    meets_threshold: bool = False
    skip_reason: str | None = None
    steps: list[StepView] = field(default_factory=list)
    tokens: TokensView = field(default_factory=TokensView)
    cost_usd: float = 0.0
    duration_ms: float | None = None

    @classmethod
    def of(cls, d: dict[str, Any]) -> EntryView:
        return cls(
            entry=_str(d, "entry", "?"),
            protocol=_str(d, "protocol", "?"),
            status=_str(d, "status", "?"),
            inputs=dict(d.get("inputs") or {}),
            answer=_str(d, "answer"),
            confidence=_num(d, "confidence"),
            confidence_breakdown=_factors(d),
            min_confidence=_zero(d, "min_confidence"),
            meets_threshold=bool(d.get("meets_threshold")),
            skip_reason=_opt_str(d, "skip_reason"),
            steps=[StepView.of(s) for s in _dicts(d, "steps")],
            tokens=TokensView.of(d.get("tokens")),
            cost_usd=_zero(d, "cost_usd"),
            duration_ms=_num(d, "duration_ms"),
        )

    @property
    def ran(self) -> bool:
        """Whether the entry started (a skipped or pending one has no numbers to show)."""
        return self.status not in ("skipped", "pending")


@dataclass(frozen=True)
class RunView:
    """A run as the surfaces show it. `confidence_raw` is the heuristic value when a calibrator
    replaced it; `budget_note` says why a cost budget is not enforced."""

    run_id: str
    kind: str = "run"
    name: str = ""
    status: str = "?"
    complete: bool = False
    stop_reason: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    answer: str = ""
    answer_entry: str = ""  # the profile entry whose answer this is (engine/answers.py)
    answer_tool: str = ""  # that entry's tool, by its display name
    confidence: float | None = None
    confidence_raw: float | None = None
    confidence_breakdown: list[FactorView] = field(default_factory=list)
    min_confidence: float = 0.0
    meets_threshold: bool = False
    entries: list[EntryView] = field(default_factory=list)
    tokens: TokensView = field(default_factory=TokensView)
    cost_usd: float = 0.0
    price_known: bool = True
    duration_ms: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    provider: str = ""
    model: str = ""
    budget_note: str | None = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, d: dict[str, Any]) -> RunView:
        known = d.get("price_known")
        return cls(
            run_id=_str(d, "run_id"),
            kind=_str(d, "kind", "run"),
            name=_str(d, "name"),
            status=_str(d, "status", "?"),
            complete=bool(d.get("complete")),
            stop_reason=_opt_str(d, "stop_reason"),
            inputs=dict(d.get("inputs") or {}),
            answer=_str(d, "answer"),
            answer_entry=_str(d, "answer_entry"),
            answer_tool=_str(d, "answer_tool"),
            confidence=_num(d, "confidence"),
            confidence_raw=_num(d, "confidence_raw"),
            confidence_breakdown=_factors(d),
            min_confidence=_zero(d, "min_confidence"),
            meets_threshold=bool(d.get("meets_threshold")),
            entries=[EntryView.of(e) for e in _dicts(d, "entries")],
            tokens=TokensView.of(d.get("tokens")),
            cost_usd=_zero(d, "cost_usd"),
            price_known=True if known is None else bool(known),
            duration_ms=_num(d, "duration_ms"),
            started_at=_num(d, "started_at"),
            finished_at=_num(d, "finished_at"),
            provider=_str(d, "provider"),
            model=_str(d, "model"),
            budget_note=_opt_str(d, "budget_note"),
            errors=_strs(d, "errors"),
            notes=_strs(d, "notes"),
        )

    @property
    def all_notes(self) -> list[str]:
        """The run's notes and, last, why its cost budget is not enforced: shown alike everywhere."""
        return [*self.notes, *([self.budget_note] if self.budget_note else [])]

    @property
    def model_text(self) -> str:
        return f"{self.provider} {self.model}".strip()

    @property
    def question(self) -> str:
        """The run's main input: `query` when there is one, else the first text input."""
        if isinstance(self.inputs.get("query"), str):
            return str(self.inputs["query"])
        for value in self.inputs.values():
            if isinstance(value, str) and value.strip():
                return value
        return f"{self.kind} {self.name}"


def run_view(source: RunResult | RunView | dict[str, Any]) -> RunView:
    """The view of a run result, of a stored trace (`StoreBackend.get`), or the view itself."""
    if isinstance(source, RunView):
        return source
    return RunView.of(source if isinstance(source, dict) else source.trace())
