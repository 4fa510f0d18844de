"""Typed models for ThinkTool protocol files and profile files.

A protocol file (``protocols/<id>.toml``) describes one ThinkTool as data: its inputs (which become
the MCP tool's input schema), a graph of LLM steps, and how the step confidences aggregate.
``protocols/profiles.toml`` chains protocols into profiles. See docs/protocol-authoring.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChainEntry",
    "ConfidenceSpec",
    "InputSpec",
    "InputType",
    "PROFILE_INPUTS",
    "Profile",
    "Protocol",
    "ResultSpec",
    "Signal",
    "Step",
    "StepKind",
    "When",
]

StepKind = Literal["generate", "analyze", "synthesize", "validate", "critique", "decide", "cross_reference"]
InputType = Literal["string", "integer", "number", "boolean"]


class _Strict(BaseModel):
    # Unknown keys are errors: a typo such as `depends = [...]` must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    type: InputType = "string"
    required: bool = False
    max_length: int | None = Field(default=None, ge=1)
    description: str = ""
    default: str | int | float | bool | None = None


class Step(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: StepKind
    prompt: str
    system: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    output: dict[str, Any]
    # Run once per item of a list produced by an earlier step: "steps.<step_id>.<field>".
    for_each: str | None = None
    # N independent samples of this step; agreement between them feeds the confidence.
    samples: int = Field(default=1, ge=1, le=9)
    # Field whose value the samples should agree on (e.g. "verdict"); default: confidence spread.
    agree_on: str | None = None
    # Bounds on the list field named by `items_field` (default: the first array property).
    items_field: str | None = None
    min_items: int | None = Field(default=None, ge=0)
    max_items: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=16)
    weight: float = Field(default=1.0, ge=0.0)
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class Signal(_Strict):
    """A tool-specific confidence signal read from a step's structured output.

    kind = "map":   look up str(output[field]) in `values`; the number found is added to the
                    protocol confidence (negative values lower it). With `cap` the protocol
                    confidence is also capped at `cap[value]`.
    kind = "count": len(output[field]) * per_item is added, bounded below by `max_total`.
    """

    kind: Literal["map", "count"]
    step: str
    field: str
    label: str = ""
    values: dict[str, float] = Field(default_factory=dict)
    cap: dict[str, float] = Field(default_factory=dict)
    per_item: float = 0.0
    max_total: float = -1.0


class ConfidenceSpec(_Strict):
    # Weighted mean of step confidences (step `weight`), minus contradiction_penalty * weighted
    # standard deviation of those confidences, plus the signals below; clamped to 0..1.
    contradiction_penalty: float = Field(default=0.5, ge=0.0, le=2.0)
    signals: list[Signal] = Field(default_factory=list)


class ResultSpec(_Strict):
    step: str
    field: str = "answer"
    # The field of the same step that states the answer to the user's question in a sentence or
    # two (a checking tool's "bottom line"): a profile's answer leads with it (engine/answers.py).
    bottom_line: str | None = None


class Protocol(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    name: str
    version: str = "1.0.0"
    description: str
    # Shown to MCP clients: when the tool helps and when it does not.
    use_when: str = ""
    avoid_when: str = ""
    inputs: dict[str, InputSpec]
    steps: list[Step] = Field(min_length=1)
    result: ResultSpec
    confidence: ConfidenceSpec = Field(default_factory=ConfidenceSpec)
    min_confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    # Absolute path of the file this came from (set by the loader, not written in TOML).
    source: str = ""

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


class When(_Strict):
    """Run a chain entry only when the profile's confidence so far is below / above a value."""

    confidence_below: float | None = Field(default=None, ge=0.0, le=1.0)
    confidence_above: float | None = Field(default=None, ge=0.0, le=1.0)


class ChainEntry(_Strict):
    protocol: str
    # Defaults to the protocol id; needed when a protocol appears twice in one chain.
    id: str | None = None
    # Maps this protocol's input names to templates over `inputs.*` (the profile inputs) and
    # `results.<entry_id>.answer|confidence|output.<step>.<field>`.
    inputs: dict[str, str] = Field(default_factory=dict)
    when: When | None = None
    weight: float = Field(default=1.0, ge=0.0)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=16)

    @property
    def entry_id(self) -> str:
        return self.id or self.protocol


class Profile(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str
    min_confidence: float = Field(ge=0.0, le=1.0)
    chain: list[ChainEntry] = Field(min_length=1)
    contradiction_penalty: float = Field(default=0.5, ge=0.0, le=2.0)
    # Which entry's answer is the profile's answer: the last one that ran when unset.
    answer_from: str | None = None
    # After the chain, one short step states the answer to the question from that entry's answer
    # (engine/closing.py); the built-in profiles set it.
    closing_step: bool = False
    source: str = ""


# Inputs every profile (the `think` tool / `rk think`) accepts.
PROFILE_INPUTS: dict[str, InputSpec] = {
    "query": InputSpec(type="string", required=True, max_length=20000, description="The question or task."),
    "context": InputSpec(
        type="string",
        required=False,
        max_length=50000,
        description="Background the answer should take into account.",
    ),
}
