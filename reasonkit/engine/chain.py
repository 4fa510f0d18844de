"""A profile run: its chain entries scheduled as a graph. An entry runs as soon as the entries its
input templates name have finished; an entry with `when` waits for every earlier entry and runs only
if the profile's confidence so far matches. A skipped entry never breaks later entries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from reasonkit.engine.answers import best_answers
from reasonkit.engine.budget import Event, RunState
from reasonkit.engine.result import EntryResult
from reasonkit.engine.scoring import profile_confidence, score_profile
from reasonkit.protocol.dependencies import chain_dependencies
from reasonkit.protocol.inputs import coerce_inputs
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import ChainEntry, Profile, Protocol
from reasonkit.protocol.template import compiled

RunEntry = Callable[[RunState, Protocol, EntryResult, ChainEntry | None], Awaitable[None]]


async def run_chain(
    state: RunState, registry: Registry, prof: Profile, inputs: dict[str, Any], run_entry: RunEntry
) -> None:
    result = state.result
    entries = {e.entry_id: EntryResult(entry=e.entry_id, protocol=e.protocol) for e in prof.chain}
    result.entries = [entries[e.entry_id] for e in prof.chain]
    state.total = sum(len(registry.protocol(e.protocol).steps) for e in prof.chain)
    finished = {e.entry_id: anyio.Event() for e in prof.chain}
    order = [e.entry_id for e in prof.chain]
    dependencies = chain_dependencies(prof)

    async def skip(entry_result: EntryResult, reason: str) -> None:
        entry_result.status = "skipped"
        entry_result.skip_reason = reason
        await state.emit(Event("entry_skipped", result.run_id, entry=entry_result.entry, message=reason))

    async def run_one(i: int, entry: ChainEntry) -> None:
        entry_result = entries[entry.entry_id]
        try:
            for dep in dependencies[entry.entry_id]:
                await finished[dep].wait()
            if entry.when is not None:
                so_far, _ = profile_confidence(prof, [entries[o] for o in order[:i]])
                when = entry.when
                run = (when.confidence_below is None or so_far < when.confidence_below) and (
                    when.confidence_above is None or so_far > when.confidence_above
                )
                if not run:
                    if when.confidence_below is not None:
                        condition = f"below {when.confidence_below}"
                    else:
                        condition = f"above {when.confidence_above}"
                    state.total -= len(registry.protocol(entry.protocol).steps)
                    await skip(entry_result, f"confidence so far {so_far:.2f} is not {condition}")
                    return
            if state.check_budget():
                await skip(entry_result, state.exhausted or "budget spent")
                return
            proto = registry.protocol(entry.protocol)
            entry_result.inputs = map_inputs(proto, entry, inputs, entries)
            entry_result.min_confidence = proto.min_confidence
            await run_entry(state, proto, entry_result, entry)
        finally:
            finished[entry.entry_id].set()

    async with anyio.create_task_group() as tg:
        for i, entry in enumerate(prof.chain):
            tg.start_soon(run_one, i, entry)
    score_profile(prof, result, {e.protocol: registry.protocol(e.protocol).name for e in prof.chain})


def map_inputs(
    proto: Protocol, entry: ChainEntry, inputs: dict[str, Any], entries: dict[str, EntryResult]
) -> dict[str, Any]:
    """The inputs of a chain entry, rendered from the profile inputs and earlier entries' results."""
    values: dict[str, Any] = {"inputs": inputs, "results": {}}
    # an entry cut before its final step hands on the best answer before it, not its findings
    for entry_id, answer in best_answers(list(entries.values())).items():
        entry_result = entries[entry_id]
        confidence = entry_result.confidence or 0.0
        values["results"][entry_id] = {
            "answer": answer,
            "confidence": round(confidence, 2),
            "summary": f"{entry_result.protocol} (confidence {confidence:.2f}): {answer}" if answer else "",
            "output": {s.step_id: s.output for s in entry_result.steps if s.output is not None},
        }
    mapping = dict(entry.inputs)
    required = [n for n, s in proto.inputs.items() if s.required]
    if required and required[0] not in mapping:
        mapping[required[0]] = "{{ inputs.query }}"
    if "context" in proto.inputs and "context" not in mapping:
        mapping["context"] = "{{ inputs.context }}"
    out: dict[str, Any] = {}
    for name, template in mapping.items():
        text = compiled(template).render(values, quote=False).strip()
        if text:
            out[name] = text
    # A required input that rendered empty (it named a skipped entry) falls back to the query.
    for name in required:
        if name not in out:
            out[name] = inputs["query"]
    for name, value in list(out.items()):
        limit = proto.inputs[name].max_length if name in proto.inputs else None
        if limit and isinstance(value, str) and len(value) > limit:
            out[name] = value[: limit - 20] + "\n[...truncated]"
    return coerce_inputs(proto.inputs, out, f"protocol '{proto.id}'")
