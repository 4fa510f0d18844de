"""Cross-checks of loaded protocols and profiles: step dependencies and cycles, template paths,
output schemas, chain entries. Every problem is a `Problem` (file, field, plain sentence)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reasonkit.errors import TemplateError
from reasonkit.protocol.dependencies import effective_deps, find_cycle, step_ancestors
from reasonkit.protocol.models import PROFILE_INPUTS, Profile, Protocol, Signal, Step
from reasonkit.protocol.template import Template


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


def _schema_problems(file: str, where: str, schema: dict[str, Any]) -> list[Problem]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    problems: list[Problem] = []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        problems.append(Problem(file, where, f"is not a valid JSON schema: {exc.message}"))
        return problems
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        problems.append(Problem(file, where, 'must be an object schema (type = "object" with properties)'))
        return problems
    conf = schema["properties"].get("confidence")
    if not isinstance(conf, dict) or conf.get("type") not in ("number", "integer"):
        problems.append(Problem(file, where, "must have a numeric `confidence` property (0..1)"))
    elif "confidence" not in schema.get("required", []):
        problems.append(Problem(file, where, "must list `confidence` in `required`"))
    return problems


def _array_props(schema: dict[str, Any]) -> list[str]:
    return [
        k for k, v in schema.get("properties", {}).items() if isinstance(v, dict) and v.get("type") == "array"
    ]


def check_protocol(p: Protocol, file: str) -> list[Problem]:
    """Cross-field checks that a schema alone cannot express: the step graph, each step (for_each,
    item bounds, templates), the inputs, the result and the confidence signals."""
    ctx = _ProtocolContext(p, file)
    problems = _graph_problems(ctx)
    used_inputs: set[str] = set()
    for i, s in enumerate(p.steps):
        problems += _step_problems(ctx, i, s, used_inputs)
    problems += _input_problems(ctx, used_inputs)
    problems += _result_problems(ctx)
    for j, sig in enumerate(p.confidence.signals):
        problems += _signal_problems(ctx, f"confidence.signals[{j}]", sig)
    return problems


class _ProtocolContext:
    """What every check of one protocol reads: the steps by id, the effective dependencies and
    whether they form a cycle (computed once)."""

    def __init__(self, p: Protocol, file: str):
        self.p = p
        self.file = file
        self.ids = [s.id for s in p.steps]
        self.by_id = {s.id: s for s in p.steps}
        self.deps = effective_deps(p)
        self.cycle = find_cycle({k: [d for d in v if d != k] for k, v in self.deps.items()})

    def problem(self, field: str, message: str) -> Problem:
        return Problem(self.file, field, message)


def _graph_problems(ctx: _ProtocolContext) -> list[Problem]:
    problems: list[Problem] = []
    for i, sid in enumerate(ctx.ids):
        if ctx.ids.index(sid) != i:
            problems.append(ctx.problem(f"steps[{i}].id", f"duplicate step id '{sid}'"))
    for i, s in enumerate(ctx.p.steps):
        for d in s.depends_on:
            if d not in ctx.by_id:
                known = ", ".join(ctx.ids)
                problems.append(
                    ctx.problem(f"steps[{i}].depends_on", f"names unknown step '{d}' (known: {known})")
                )
            elif d == s.id:
                problems.append(ctx.problem(f"steps[{i}].depends_on", f"step '{s.id}' depends on itself"))
    if ctx.cycle:
        problems.append(ctx.problem("steps", f"dependency cycle: {' -> '.join(ctx.cycle)}"))
    return problems


def _step_problems(ctx: _ProtocolContext, i: int, s: Step, used_inputs: set[str]) -> list[Problem]:
    where = f"steps[{i}]"
    problems = _schema_problems(ctx.file, f"{where}.output", s.output)
    item_schema: dict[str, Any] | None = None
    if s.for_each:
        more, item_schema = _for_each_problems(ctx, where, s.for_each)
        problems += more
    problems += _field_problems(ctx, where, s)
    ancestors = step_ancestors(ctx.deps, s.id) if not ctx.cycle else set(ctx.ids)
    for field_name, text in (("prompt", s.prompt), ("system", s.system or "")):
        try:
            paths = Template(text).paths()
        except TemplateError as exc:
            problems.append(ctx.problem(f"{where}.{field_name}", f"template error: {exc}"))
            continue
        for path in paths:
            msg = _check_step_path(path, ctx.p, ctx.by_id, ancestors, s.for_each is not None, item_schema)
            if msg:
                problems.append(ctx.problem(f"{where}.{field_name}", msg))
            elif path.startswith("inputs."):
                used_inputs.add(path.split(".")[1])
    return problems


def _for_each_problems(
    ctx: _ProtocolContext, where: str, for_each: str
) -> tuple[list[Problem], dict[str, Any] | None]:
    """Problems of a `for_each` reference, and the item schema of the list it fans out over."""
    field = f"{where}.for_each"
    parts = for_each.split(".")
    if len(parts) != 3 or parts[0] != "steps":
        return [ctx.problem(field, "must look like 'steps.<step_id>.<list field>'")], None
    if parts[1] not in ctx.by_id:
        return [ctx.problem(field, f"names unknown step '{parts[1]}'")], None
    problems: list[Problem] = []
    src = ctx.by_id[parts[1]]
    if src.for_each:
        problems.append(
            ctx.problem(field, f"step '{src.id}' is itself a for_each step; fan out from a single step")
        )
    fs = src.output.get("properties", {}).get(parts[2])
    if not isinstance(fs, dict) or fs.get("type") != "array":
        problems.append(ctx.problem(field, f"'{parts[2]}' is not a list field of step '{src.id}'"))
        return problems, None
    return problems, fs.get("items") if isinstance(fs.get("items"), dict) else {}


def _field_problems(ctx: _ProtocolContext, where: str, s: Step) -> list[Problem]:
    """`agree_on`, `items_field` and the item bounds against the step's own output schema."""
    problems: list[Problem] = []
    props = s.output.get("properties", {}) if isinstance(s.output.get("properties"), dict) else {}
    if s.agree_on and s.agree_on not in props:
        problems.append(
            ctx.problem(f"{where}.agree_on", f"'{s.agree_on}' is not a field of this step's output")
        )
    if s.agree_on and s.samples < 2:
        problems.append(ctx.problem(f"{where}.agree_on", "only makes sense with samples >= 2"))
    arrays = _array_props(s.output)
    if s.items_field and s.items_field not in arrays:
        problems.append(
            ctx.problem(
                f"{where}.items_field", f"'{s.items_field}' is not a list field of this step's output"
            )
        )
    if (s.min_items is not None or s.max_items is not None) and not arrays:
        problems.append(
            ctx.problem(f"{where}.min_items", "item bounds need a list field in the output schema")
        )
    if s.min_items is not None and s.max_items is not None and s.min_items > s.max_items:
        problems.append(
            ctx.problem(
                f"{where}.min_items", f"min_items ({s.min_items}) is larger than max_items ({s.max_items})"
            )
        )
    return problems


def _input_problems(ctx: _ProtocolContext, used_inputs: set[str]) -> list[Problem]:
    problems = [
        ctx.problem(f"inputs.{name}", "is never used by any step prompt, so it would be silently dropped")
        for name in ctx.p.inputs
        if name not in used_inputs
    ]
    if "context" not in ctx.p.inputs:
        problems.append(ctx.problem("inputs", "every ThinkTool must accept an optional `context` input"))
    if not any(spec.required for spec in ctx.p.inputs.values()):
        problems.append(ctx.problem("inputs", "needs at least one required input"))
    return problems


def _result_problems(ctx: _ProtocolContext) -> list[Problem]:
    result = ctx.p.result
    if result.step not in ctx.by_id:
        return [ctx.problem("result.step", f"names unknown step '{result.step}'")]
    problems: list[Problem] = []
    rs = ctx.by_id[result.step]
    if rs.for_each:
        problems.append(
            ctx.problem("result.step", "cannot be a for_each step; add a step that synthesizes the items")
        )
    for key, wanted in (("field", result.field), ("bottom_line", result.bottom_line)):
        if wanted is not None and wanted not in rs.output.get("properties", {}):
            problems.append(ctx.problem(f"result.{key}", f"'{wanted}' is not a field of step '{rs.id}'"))
    return problems


def _signal_problems(ctx: _ProtocolContext, where: str, sig: Signal) -> list[Problem]:
    if sig.step not in ctx.by_id:
        return [ctx.problem(f"{where}.step", f"names unknown step '{sig.step}'")]
    if ctx.by_id[sig.step].for_each:
        return [
            ctx.problem(
                f"{where}.step",
                f"step '{sig.step}' is a for_each step; signals read single outputs "
                "(use the step that synthesizes the items)",
            )
        ]
    fs = ctx.by_id[sig.step].output.get("properties", {}).get(sig.field)
    if fs is None:
        return [ctx.problem(f"{where}.field", f"'{sig.field}' is not a field of step '{sig.step}'")]
    if sig.kind == "count" and fs.get("type") != "array":
        return [
            ctx.problem(
                f"{where}.field", f"a count signal needs a list field; '{sig.field}' is {fs.get('type')}"
            )
        ]
    if sig.kind == "map" and not (sig.values or sig.cap):
        return [ctx.problem(f"{where}.values", "a map signal needs `values` or `cap`")]
    return []


def _check_step_path(
    path: str,
    p: Protocol,
    by_id: dict[str, Any],
    ancestors: set[str],
    in_for_each: bool,
    item_schema: dict[str, Any] | None,
) -> str | None:
    parts = path.split(".")
    root = parts[0]
    if root == "inputs":
        if len(parts) != 2 or parts[1] not in p.inputs:
            return (
                f"template names '{path}', but the protocol has no such input (inputs: {', '.join(p.inputs)})"
            )
        return None
    if root == "steps":
        if len(parts) < 2 or parts[1] not in by_id:
            return f"template names '{path}', but there is no such step"
        if parts[1] not in ancestors:
            return (
                f"template names '{path}', but step '{parts[1]}' is not in depends_on (directly or "
                "indirectly), so its output may not exist yet"
            )
        src = by_id[parts[1]]
        if len(parts) >= 3:
            if src.for_each:
                return (
                    f"template names '{path}': for_each step '{src.id}' produces a list; "
                    f"use '{{{{ steps.{src.id} }}}}' as a whole"
                )
            if parts[2] not in src.output.get("properties", {}):
                return f"template names '{path}', but step '{src.id}' has no output field '{parts[2]}'"
        return None
    if root in ("item", "item_index", "item_count"):
        if not in_for_each:
            return f"template names '{path}', which only exists in a for_each step"
        if root == "item" and len(parts) >= 2 and item_schema is not None:
            props = item_schema.get("properties")
            if item_schema.get("type") != "object" or not isinstance(props, dict) or parts[1] not in props:
                return f"template names '{path}', but the for_each items have no field '{parts[1]}'"
        return None
    if root in ("min_items", "max_items") and len(parts) == 1:
        return None  # the step's own item bounds, as the engine applies them (small-model caps too)
    return (
        f"template names '{path}'; values come from inputs.*, steps.*, item/item_index/item_count, "
        "min_items or max_items"
    )


def check_profile(prof: Profile, protocols: dict[str, Protocol], file: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: list[str] = []
    for i, entry in enumerate(prof.chain):
        where = f"profiles.{prof.id}.chain[{i}]"
        proto = protocols.get(entry.protocol)
        if entry.entry_id in seen:
            problems.append(
                Problem(
                    file,
                    f"{where}.id",
                    f"duplicate chain entry id '{entry.entry_id}'; give repeated protocols an `id`",
                )
            )
        if proto is None:
            problems.append(
                Problem(
                    file,
                    f"{where}.protocol",
                    f"unknown protocol '{entry.protocol}' (loaded: {', '.join(sorted(protocols)) or 'none'})",
                )
            )
            seen.append(entry.entry_id)
            continue
        for name, tmpl in entry.inputs.items():
            if name not in proto.inputs:
                problems.append(
                    Problem(
                        file,
                        f"{where}.inputs.{name}",
                        f"protocol '{proto.id}' has no input '{name}' (inputs: {', '.join(proto.inputs)})",
                    )
                )
            try:
                paths = Template(tmpl).paths()
            except TemplateError as exc:
                problems.append(Problem(file, f"{where}.inputs.{name}", f"template error: {exc}"))
                continue
            for path in paths:
                parts = path.split(".")
                if parts[0] == "inputs" and len(parts) == 2 and parts[1] in PROFILE_INPUTS:
                    continue
                if parts[0] == "results" and len(parts) >= 3 and parts[1] in seen:
                    if parts[2] in ("answer", "confidence", "summary") or (
                        parts[2] == "output" and len(parts) >= 4
                    ):
                        continue
                    problems.append(
                        Problem(
                            file,
                            f"{where}.inputs.{name}",
                            f"'{path}': use results.<entry>.answer, .confidence, .summary or "
                            ".output.<step>.<field>",
                        )
                    )
                    continue
                problems.append(
                    Problem(
                        file,
                        f"{where}.inputs.{name}",
                        f"template names '{path}'; chain inputs may use inputs.query, inputs.context "
                        "or results.<earlier entry>.*",
                    )
                )
        if entry.when and entry.when.confidence_below is None and entry.when.confidence_above is None:
            problems.append(Problem(file, f"{where}.when", "needs confidence_below or confidence_above"))
        if entry.when and i == 0:
            problems.append(
                Problem(
                    file, f"{where}.when", "the first entry cannot be conditional: there is no confidence yet"
                )
            )
        seen.append(entry.entry_id)
    if prof.answer_from and prof.answer_from not in seen:
        problems.append(
            Problem(
                file, f"profiles.{prof.id}.answer_from", f"names unknown chain entry '{prof.answer_from}'"
            )
        )
    return problems
