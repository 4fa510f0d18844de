"""What a run produces: the result a user sees and the trace behind it (both JSON-serialisable)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

__all__ = [
    "CallTrace",
    "EntryResult",
    "FINISHED_STATUSES",
    "Factor",
    "RUN_STATUSES",
    "RunResult",
    "RunStatus",
    "StepStatus",
    "StepTrace",
    "Tokens",
]

StepStatus = Literal["pending", "running", "ok", "degraded", "failed", "skipped", "cancelled"]
# Every status a run can have. The engine sets the first five; "interrupted" is set by the run store
# for a run whose owning process died before it finished.
RunStatus = Literal["running", "complete", "incomplete", "cancelled", "failed", "interrupted"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
FINISHED_STATUSES: tuple[str, ...] = tuple(s for s in RUN_STATUSES if s != "running")


class Factor(BaseModel):
    """One signal in a confidence breakdown. The deltas of a breakdown add up to the final value."""

    signal: str
    delta: float
    detail: str = ""


class Tokens(BaseModel):
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def add(self, other: dict[str, int] | Tokens) -> None:
        if isinstance(other, dict):
            other = Tokens(**other)
        self.input += other.input
        self.output += other.output
        self.cache_read += other.cache_read
        self.cache_write += other.cache_write

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write


class CallTrace(BaseModel):
    purpose: str  # "main", "sample 2", "repair"
    raw_response: str = ""
    stop_reason: str = ""
    tokens: Tokens = Field(default_factory=Tokens)
    cost_usd: float = 0.0
    price_known: bool = True
    duration_ms: float = 0.0
    provider: str = ""
    model: str = ""
    attempts: int = 0
    error: str | None = None
    cached: bool = False  # served from the response cache (no tokens, no cost)
    cache_layer: str | None = None  # memory | redis
    # providers skipped or given up on before `provider` answered: [{provider, reason, detail}]
    fallbacks: list[dict[str, str]] = Field(default_factory=list)


class StepTrace(BaseModel):
    step_id: str
    protocol: str
    entry: str
    kind: str
    item_index: int | None = None
    status: StepStatus = "pending"
    system: str | None = None
    prompt: str = ""
    raw_response: str = ""
    output: Any = None
    confidence: float | None = None
    confidence_breakdown: list[Factor] = Field(default_factory=list)
    tokens: Tokens = Field(default_factory=Tokens)
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    provider: str = ""
    model: str = ""
    error: str | None = None
    notes: list[str] = Field(default_factory=list)
    calls: list[CallTrace] = Field(default_factory=list)
    items: list[StepTrace] = Field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "step_id": self.step_id,
            "protocol": self.protocol,
            "entry": self.entry,
            "status": self.status,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "duration_ms": round(self.duration_ms, 1),
            "tokens": self.tokens.model_dump(),
        }
        if self.items:
            d["items"] = len(self.items)
        if self.error:
            d["error"] = self.error
        return d


class EntryResult(BaseModel):
    """The result of one protocol run (alone, or as one entry of a profile chain)."""

    entry: str
    protocol: str
    status: Literal["pending", "running", "complete", "incomplete", "skipped", "failed", "cancelled"] = (
        "pending"
    )
    inputs: dict[str, Any] = Field(default_factory=dict)
    answer: str = ""
    # the result step's `bottom_line` field (protocol.result.bottom_line), when it has one
    bottom_line: str = ""
    # the answer is the findings of an entry cut before its final step, not an answer to pass on
    partial: bool = False
    output: dict[str, Any] | None = None
    confidence: float | None = None
    confidence_breakdown: list[Factor] = Field(default_factory=list)
    min_confidence: float = 0.0
    meets_threshold: bool = False
    skip_reason: str | None = None
    steps: list[StepTrace] = Field(default_factory=list)
    tokens: Tokens = Field(default_factory=Tokens)
    cost_usd: float = 0.0
    duration_ms: float = 0.0


class RunResult(BaseModel):
    run_id: str
    kind: Literal["protocol", "profile"]
    name: str
    status: RunStatus = "running"
    complete: bool = False
    stop_reason: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    answer: str = ""
    # the chain entry the answer came from, and its tool's name (shown beside the answer)
    answer_entry: str = ""
    answer_tool: str = ""
    confidence: float = 0.0
    # the heuristic value when a fitted calibrator replaced it (engine/calibration.py); else None
    confidence_raw: float | None = None
    confidence_breakdown: list[Factor] = Field(default_factory=list)
    min_confidence: float = 0.0
    meets_threshold: bool = False
    entries: list[EntryResult] = Field(default_factory=list)
    tokens: Tokens = Field(default_factory=Tokens)
    cost_usd: float = 0.0
    price_known: bool = True
    duration_ms: float = 0.0
    started_at: float = 0.0
    finished_at: float | None = None
    provider: str = ""
    model: str = ""
    budget: dict[str, float | int | None] = Field(default_factory=dict)
    budget_note: str | None = None  # why the cost budget is not enforced (unknown prices)
    errors: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    # the principal that started the run (reasonkit/principal.py); None: a run of `rk think`, or
    # one stored before owners were recorded (only admins see it)
    owner: str | None = None

    def all_steps(self) -> list[StepTrace]:
        return [s for e in self.entries for s in e.steps]

    def summary(self) -> dict[str, Any]:
        """The result as `rk think --format json` and the MCP tools report it."""
        d: dict[str, Any] = {
            "run_id": self.run_id,
            self.kind: self.name,
            "status": self.status,
            "complete": self.complete,
            "answer": self.answer,
            "confidence": round(self.confidence, 4),
            "min_confidence": self.min_confidence,
            "meets_threshold": self.meets_threshold,
            "confidence_breakdown": [f.model_dump() for f in self.confidence_breakdown],
            "entries": [
                {
                    "entry": e.entry,
                    "protocol": e.protocol,
                    "status": e.status,
                    "confidence": None if e.confidence is None else round(e.confidence, 4),
                    "meets_threshold": e.meets_threshold,
                    "skip_reason": e.skip_reason,
                    "confidence_breakdown": [f.model_dump() for f in e.confidence_breakdown],
                }
                for e in self.entries
            ],
            "steps": [s.summary() for s in self.all_steps()],
            "tokens": {
                "input": self.tokens.input,
                "output": self.tokens.output,
                "cache_read": self.tokens.cache_read,
                "cache_write": self.tokens.cache_write,
            },
            "cost_usd": round(self.cost_usd, 6),
            "price_known": self.price_known,
            "duration_ms": round(self.duration_ms, 1),
            "provider": self.provider,
            "model": self.model,
        }
        if self.answer_entry:
            d["answer_entry"], d["answer_tool"] = self.answer_entry, self.answer_tool
        if self.confidence_raw is not None:
            d["confidence_raw"] = round(self.confidence_raw, 4)
        if self.budget.get("usd") is not None:
            d["budget_enforced"] = self.budget_note is None
            if self.budget_note:
                d["budget_note"] = self.budget_note
        if self.stop_reason:
            d["stop_reason"] = self.stop_reason
        if self.errors:
            d["errors"] = self.errors
        if self.notes:
            d["notes"] = self.notes
        return d

    def trace(self) -> dict[str, Any]:
        """Everything: rendered prompts, raw responses, parsed outputs, per-call usage."""
        return self.model_dump(mode="json")
