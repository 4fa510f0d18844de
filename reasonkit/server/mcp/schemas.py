"""MCP tool, prompt and output schemas generated from the loaded protocols and profiles.

Input schemas declare the real types (so models fill them in correctly), but the server validates
and coerces arguments itself with the engine's `coerce_inputs` ("3" -> 3, "true" -> true): the
low-level SDK server does not validate against these schemas, so lax clients are never rejected
before the engine sees their arguments.

The tool list is kept lean (every client sends it to its model with every request): the output
schema, the same for every tool, names the fields a client acts on and says nothing twice; the
deadline and background semantics are told in short in the `deadline_s` / `background` inputs; each
description ends with what the tool costs on the configured provider (model calls, time:
reasonkit.server.mcp.estimates), its default deadline, and how to run longer than the client waits.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types

from reasonkit.errors import ConfigError
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import PROFILE_INPUTS, InputSpec, Profile, Protocol
from reasonkit.server.mcp.estimates import HOSTED, Pace, profile_estimate, protocol_estimate

THINK_TOOL = "think"
RUN_RESULT_TOOL = "run_result"
RESERVED_ARGS = ("deadline_s", "background", "idempotency_key")
MAX_IDEMPOTENCY_KEY = 200
MAX_DEADLINE_S = 3600.0


def tool_names(registry: Registry) -> list[str]:
    """Every tool the server can expose for these protocols and profiles."""
    reserved = (THINK_TOOL, RUN_RESULT_TOOL)
    names = sorted(pid for pid in registry.protocols if pid not in reserved)
    return names + ([THINK_TOOL] if registry.profiles else []) + [RUN_RESULT_TOOL]


def exposed_tools(selected: list[str], registry: Registry) -> set[str]:
    """The tools `[server] tools` selects (empty: all); ConfigError naming the valid ones for a name
    that is not a tool."""
    valid = tool_names(registry)
    unknown = [name for name in selected if name not in valid]
    if unknown:
        raise ConfigError(
            f"[server] tools: {', '.join(repr(u) for u in unknown)} "
            f"{'is not a tool' if len(unknown) == 1 else 'are not tools'}; the tools are: {', '.join(valid)}"
        )
    return set(selected or valid)


def input_property(spec: InputSpec) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": spec.type}
    if spec.description:
        prop["description"] = spec.description
    if spec.max_length and spec.type == "string":
        prop["maxLength"] = spec.max_length
    if spec.default is not None:
        prop["default"] = spec.default
    return prop


def _control_properties(default_deadline: float | None) -> dict[str, Any]:
    """The inputs every ThinkTool takes, each described in one line (a model deciding how to call
    a long tool reads these); `CONTROL_NOTE` says the rest once."""
    default = f"default {default_deadline:g}" if default_deadline else "default: the profile's, above"
    return {
        "deadline_s": {
            "type": "number",
            "maximum": MAX_DEADLINE_S,
            "description": f"Seconds, then the partial result returns; {default}. Progress names the run_id.",
        },
        "background": {
            "type": "boolean",
            "default": False,
            "description": "true: get a run_id at once; fetch the result with run_result.",
        },
        "idempotency_key": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
    }


#: The control inputs, described once for all tools (in the `run_result` description).
CONTROL_NOTE = (
    "Every ThinkTool also takes deadline_s (seconds, default in each tool's description; then the best "
    "partial result returns, complete: false), background (true: a run_id at once, the result from here) "
    "and idempotency_key (a UUID: a retry with the same key and arguments returns the first run's result)."
)
#: How to run longer than a client waits, at the end of every ThinkTool description.
LONG_NOTE = "Longer than your client waits? background: true, then run_result."


def protocol_input_schema(proto: Protocol, default_deadline: float | None) -> dict[str, Any]:
    props = {name: input_property(spec) for name, spec in proto.inputs.items() if name not in RESERVED_ARGS}
    props.update(_control_properties(default_deadline))
    required = [name for name, spec in proto.inputs.items() if spec.required and name not in RESERVED_ARGS]
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def think_input_schema(
    profiles: dict[str, Profile], default_profile: str | None, default_deadline: float | None
) -> dict[str, Any]:
    ids = sorted(profiles)
    profile_prop: dict[str, Any] = {"type": "string", "enum": ids}
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
        },
        "cancel": {"type": "boolean", "default": False, "description": "true: stop the run if it runs."},
    },
    "required": ["run_id"],
    "additionalProperties": False,
}

_STR, _BOOL = {"type": "string"}, {"type": "boolean"}

# What every ThinkTool, `think` and `run_result` return as structuredContent (the same for all tools,
# so it describes nothing twice: the tool descriptions say what the result means). A finished run
# carries everything (entries, steps, tokens, cost, ...: fields the schema allows without naming them);
# a background start or a run still in progress only run_id, status and complete (plus progress), so
# only those three are required. No field named here is ever null.
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"run_id": _STR, "status": _STR, "complete": _BOOL},
    "required": ["run_id", "status", "complete"],
}

# Only what differs from the spec's defaults (idempotentHint false, openWorldHint true; destructiveHint
# only matters when readOnlyHint is false); the title is the tool's own.
THINKTOOL_ANNOTATIONS = types.ToolAnnotations(read_only_hint=True)
# run_result reads a run, and with `cancel: true` stops one: not read-only, but nothing is lost
# (the run is kept, cancelled) and asking twice is asking once.
RUN_RESULT_ANNOTATIONS = types.ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def protocol_description(proto: Protocol, deadline: float, pace: Pace = HOSTED) -> str:
    parts = [proto.description.strip()]
    if proto.use_when:
        parts.append(f"Use when: {proto.use_when.strip()}")
    if proto.avoid_when:
        parts.append(f"Do not use when: {proto.avoid_when.strip()}")
    est = protocol_estimate(proto, pace)
    parts.append(
        f"Confidence threshold {proto.min_confidence:.2f}; {est.text(pace)}; "
        f"{_deadline(est.seconds(pace)[1], deadline)}. {LONG_NOTE}"
    )
    return "\n\n".join(parts)


def _deadline(seconds: float, deadline: float) -> str:
    over = " (under the estimate: pass background or deadline_s)" if seconds > deadline else ""
    return f"deadline {deadline:g} s{over}"


def think_description(
    profiles: dict[str, Profile], registry: Registry, deadlines: dict[str, float], pace: Pace = HOSTED
) -> str:
    lines = []
    for p in sorted(profiles.values(), key=lambda p: p.id):
        est = profile_estimate(p, registry, pace)
        chain = " > ".join(e.entry_id for e in p.chain)
        lines.append(
            f"{p.id} = {chain}: {est.text(pace)}; {_deadline(est.seconds(pace)[1], deadlines[p.id])}"
        )
    return "\n\n".join(
        [
            "Run a profile (a chain of ReasonKit ThinkTools) on a question: one answer with a confidence "
            "score, whether it meets the profile's threshold, and why.",
            "Profiles:\n" + "\n".join(lines),
            "Use when a decision, plan, claim or analysis justifies many model calls and checks from "
            "several angles. Not for simple, factual or coding questions or quick replies (answer "
            f"directly), nor when one kind of check is enough (use that ThinkTool). {LONG_NOTE}",
        ]
    )


def run_result_description() -> str:
    return (
        "Fetch a ReasonKit run by its run_id (a background run, or any earlier call). While it runs: "
        "status `running` and progress; call again later; cancel: true stops it. Does not call a model. "
        "(Clients with the MCP tasks extension get a task handle for long calls instead.)\n\n" + CONTROL_NOTE
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
