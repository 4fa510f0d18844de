"""MCP tool, prompt and output schemas generated from the loaded protocols and profiles.

Input schemas declare the real types (so models fill them in correctly), but the server validates
and coerces arguments itself with the engine's `coerce_inputs` ("3" -> 3, "true" -> true): the
low-level SDK server does not validate against these schemas, so lax clients are never rejected
before the engine sees their arguments.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types

from reasonkit.protocol.models import PROFILE_INPUTS, InputSpec, Profile, Protocol

THINK_TOOL = "think"
RUN_RESULT_TOOL = "run_result"
RESERVED_ARGS = ("deadline_s", "background")
MAX_DEADLINE_S = 3600.0

_RUN_NOTE = (
    "Every call has a deadline (`deadline_s`, default {deadline:g} s): when it passes, the best partial "
    "result comes back marked `complete: false` instead of timing out. For long work pass "
    "`background: true`, which returns a `run_id` at once; fetch the result later with `run_result`."
)


def input_property(spec: InputSpec) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": spec.type}
    if spec.description:
        prop["description"] = spec.description
    if spec.max_length and spec.type == "string":
        prop["maxLength"] = spec.max_length
    if spec.default is not None:
        prop["default"] = spec.default
    return prop


def _control_properties(default_deadline: float) -> dict[str, Any]:
    return {
        "deadline_s": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_DEADLINE_S,
            "description": (
                "Seconds this call may take before the best partial result is returned "
                f"(default {default_deadline:g}). Keep it below your client's request timeout."
            ),
        },
        "background": {
            "type": "boolean",
            "default": False,
            "description": (
                "Start the run in the background and return its run_id at once; "
                "fetch the result with the run_result tool."
            ),
        },
    }


def protocol_input_schema(proto: Protocol, default_deadline: float) -> dict[str, Any]:
    props = {name: input_property(spec) for name, spec in proto.inputs.items() if name not in RESERVED_ARGS}
    props.update(_control_properties(default_deadline))
    required = [name for name, spec in proto.inputs.items() if spec.required and name not in RESERVED_ARGS]
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def think_input_schema(
    profiles: dict[str, Profile], default_profile: str | None, default_deadline: float
) -> dict[str, Any]:
    ids = sorted(profiles)
    profile_prop: dict[str, Any] = {
        "type": "string",
        "enum": ids,
        "description": "Which chain of ThinkTools to run: "
        + "; ".join(
            f"`{p}`: {profiles[p].description.strip().rstrip('.')} "
            f"(min confidence {profiles[p].min_confidence:.2f})"
            for p in ids
        ),
    }
    if default_profile in profiles:
        profile_prop["default"] = default_profile
    props: dict[str, Any] = {
        "query": input_property(PROFILE_INPUTS["query"]),
        "profile": profile_prop,
        "context": input_property(PROFILE_INPUTS["context"]),
    }
    props.update(_control_properties(default_deadline))
    return {"type": "object", "properties": props, "required": ["query"], "additionalProperties": False}


RUN_RESULT_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "run_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "The run_id returned by a ThinkTool call.",
        }
    },
    "required": ["run_id"],
    "additionalProperties": False,
}

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_FACTOR = {
    "type": "object",
    "properties": {"signal": {"type": "string"}, "delta": _NUM, "detail": {"type": "string"}},
    "required": ["signal", "delta"],
}
_TOKENS = {
    "type": "object",
    "properties": {k: {"type": "integer"} for k in ("input", "output", "cache_read", "cache_write")},
}

# What every ThinkTool, `think` and `run_result` return as structuredContent. A finished run carries
# everything; a background start or a run still in progress only run_id, status and complete (plus
# progress), so only those three are required.
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "run_id": {"type": "string"},
        "status": {
            "type": "string",
            "description": "running, complete, incomplete, cancelled, failed or interrupted",
        },
        "complete": {
            "type": "boolean",
            "description": "false when the deadline or a budget cut the run short, or it is still running",
        },
        "answer": {"type": "string"},
        "confidence": _NUM,
        "min_confidence": _NUM,
        "meets_threshold": {"type": "boolean"},
        "confidence_breakdown": {"type": "array", "items": _FACTOR},
        "protocol": {"type": "string"},
        "profile": {"type": "string"},
        "entries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "entry": {"type": "string"},
                    "protocol": {"type": "string"},
                    "status": {"type": "string"},
                    "confidence": _NUM_OR_NULL,
                    "meets_threshold": {"type": "boolean"},
                    "skip_reason": {"type": ["string", "null"]},
                    "confidence_breakdown": {"type": "array", "items": _FACTOR},
                },
            },
        },
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "step_id": {"type": "string"},
                    "protocol": {"type": "string"},
                    "entry": {"type": "string"},
                    "status": {"type": "string"},
                    "confidence": _NUM_OR_NULL,
                    "duration_ms": _NUM,
                    "tokens": _TOKENS,
                    "items": {"type": "integer"},
                    "error": {"type": "string"},
                },
            },
        },
        "tokens": _TOKENS,
        "cost_usd": _NUM,
        "price_known": {"type": "boolean"},
        "duration_ms": _NUM,
        "provider": {"type": "string"},
        "model": {"type": "string"},
        "stop_reason": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
        "notes": {
            "type": "array",
            "items": {"type": "string"},
            "description": "What the run changed on its own, e.g. small-model caps on the local model.",
        },
        "progress": {
            "type": "object",
            "description": (
                "For a run still in progress: steps done of the total so far, and the last step finished."
            ),
            "properties": {
                "done": {"type": "integer"},
                "total": {"type": "integer"},
                "last": {"type": "string"},
                "elapsed_s": _NUM,
            },
        },
        "message": {"type": "string"},
    },
    "required": ["run_id", "status", "complete"],
}

THINKTOOL_ANNOTATIONS = types.ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
RUN_RESULT_ANNOTATIONS = types.ToolAnnotations(
    title="Fetch a ReasonKit run",
    read_only_hint=True,
    destructive_hint=False,
    idempotent_hint=True,
    open_world_hint=False,
)


def protocol_description(proto: Protocol, default_deadline: float) -> str:
    parts = [proto.description.strip()]
    if proto.use_when:
        parts.append(f"Use when: {proto.use_when.strip()}")
    if proto.avoid_when:
        parts.append(f"Do not use when: {proto.avoid_when.strip()}")
    parts.append(
        f"Returns an answer with a calibrated confidence (threshold {proto.min_confidence:.2f}), "
        "the signals behind it, and a run_id. " + _RUN_NOTE.format(deadline=default_deadline)
    )
    return "\n\n".join(parts)


def think_description(profiles: dict[str, Profile], default_deadline: float) -> str:
    chains = "; ".join(
        f"{p.id}: {' -> '.join(e.entry_id for e in p.chain)}"
        for p in sorted(profiles.values(), key=lambda p: p.id)
    )
    return "\n\n".join(
        [
            "Structured reasoning: run a profile, a chain of ReasonKit ThinkTools, on a question "
            "and return one answer with a confidence score, whether it meets the profile's threshold, "
            "and why.",
            f"Profiles: {chains}.",
            "Use when: a decision, plan, claim or analysis is important enough to justify several "
            "model calls and you want it checked from several angles (perspectives, logic, "
            "first principles, verification, critique).",
            "Do not use when: the question is simple, factual or computable, needs a quick reply, "
            "or is a coding task; answer those directly. "
            "Prefer a single ThinkTool when only one kind of check is needed.",
            _RUN_NOTE.format(deadline=default_deadline),
        ]
    )


RUN_RESULT_DESCRIPTION = (
    "Fetch a ReasonKit run by its run_id: the result of a run started with `background: true`, "
    "or of any earlier call. "
    "While the run is still going it returns status `running` with progress so far; call it again later. "
    "Does not call a model."
)


def prompt_for(proto: Protocol) -> types.Prompt:
    return types.Prompt(
        name=proto.id,
        title=proto.name,
        description=f"{proto.name}: {proto.description.strip()}",
        arguments=[
            types.PromptArgument(name=n, description=s.description or None, required=s.required)
            for n, s in proto.inputs.items()
        ],
    )


def prompt_text(proto: Protocol, args: dict[str, str]) -> str:
    lines = [
        f"Use the ReasonKit `{proto.id}` tool ({proto.name}) on the material below, "
        "then answer using its result; "
        "report the confidence it gives and say plainly if the result is marked incomplete.",
        f"If the tool is not available, reason in the {proto.name} style yourself: "
        f"{proto.description.strip()}",
        "",
    ]
    for name, spec in proto.inputs.items():
        value = args.get(name)
        if value:
            lines.append(f"<{name}>\n{value}\n</{name}>")
        elif spec.required:
            lines.append(f"<{name}></{name}>")
    return "\n".join(lines).rstrip() + "\n"
