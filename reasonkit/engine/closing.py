"""A profile's closing step: one short call that states the answer to the user's question from the
best checked answer the chain left (profiles with `closing_step = true`, all the built-in ones).

Why a step and not a field: each checking tool writes a "bottom line" meant to restate the answer,
but a tool's last step is about its own check (a verification report, a logic verdict), and a small
model (SmolLM2-135M) fills that field with text about the report rather than the question. A step
whose whole prompt is the question, the best answer so far and what each tool concluded, and whose
whole output is the answer, gives an on-topic answer on small models and a crisp one on big models.

The step runs like any protocol step (caps, sizing, repair, streaming to `rk think`), as one more
entry (`CLOSING_ENTRY`) after the chain. It never changes the profile's confidence, which stays the
chain's (the step restates what the chain checked; it checks nothing). It is skipped when the budget
is spent or no entry left an answer; when it fails, the chain's own answer stands
(engine/answers.py `profile_answer`).
"""

from __future__ import annotations

from reasonkit.engine.answers import CLOSING_ENTRY, best_answers, chain_choice, profile_answer
from reasonkit.engine.budget import Event, RunState
from reasonkit.engine.chain import RunEntry
from reasonkit.engine.result import EntryResult
from reasonkit.protocol.models import InputSpec, Profile, Protocol, ResultSpec, Step

CLOSING_PROMPT = """The question:
<question>{{ inputs.question }}</question>
{{#if inputs.context}}
Background supplied with it:
<context>{{ inputs.context }}</context>
{{/if}}
The best answer so far, after the checks by {{ inputs.tool }}:
<checked_answer>{{ inputs.answer }}</checked_answer>
{{#if inputs.checks}}
What each tool concluded, in order:
<checks>{{ inputs.checks }}</checks>
{{/if}}
Write `answer`: the answer to the question, in 2-5 plain sentences a reader can act on. Begin with \
the direct answer to the question itself (yes or no, the choice, the figure), then the main reason \
and the main condition or risk. Write about the question's subject, never about the analysis, the \
checks or a report. Where the checked answer does not address the question, answer the question \
from what the checks found and say how sure that is.
`confidence`: your probability (0-1) that this answer holds up.

Answer this question: <question>{{ inputs.question }}</question>"""

CLOSING_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["answer", "confidence"],
    "properties": {
        "answer": {
            "type": "string",
            "maxLength": 1000,
            "description": "The answer to the question in 2-5 sentences, starting with the direct answer.",
        },
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

CLOSING = Protocol(
    id=CLOSING_ENTRY,
    name="closing step",
    description="States the answer to the question from the best checked answer of a profile's chain.",
    inputs={
        "question": InputSpec(required=True, max_length=20000),
        "context": InputSpec(max_length=50000),
        "answer": InputSpec(required=True, max_length=6000),
        "tool": InputSpec(required=True, max_length=200),
        "checks": InputSpec(max_length=6000),
    },
    steps=[
        Step(
            id="state",
            kind="synthesize",
            prompt=CLOSING_PROMPT,
            output=CLOSING_SCHEMA,
            temperature=0.2,
            max_tokens=600,
        )
    ],
    result=ResultSpec(step="state", field="answer"),
    min_confidence=0.0,
)

_CHECK_CHARS = 600  # of each tool's conclusion shown to the closing step


def closing_inputs(
    entries: list[EntryResult], chosen: EntryResult, names: dict[str, str], query: str, context: str
) -> dict[str, str]:
    """The closing step's inputs: the question, the chosen entry's answer (its bottom line when it has
    one) and each finished entry's conclusion in chain order."""
    checks = []
    for entry_result in entries:
        said = entry_result.bottom_line or entry_result.answer
        if entry_result.status == "complete" and said and not entry_result.partial:
            name = names.get(entry_result.protocol, entry_result.protocol)
            checks.append(f"- {name}: {' '.join(said.split())[:_CHECK_CHARS]}")
    tool = names.get(chosen.protocol, chosen.protocol)
    inputs = {"question": query, "answer": best_of(chosen, entries)[:6000], "tool": tool}
    inputs["checks"] = "\n".join(checks)
    if context:
        inputs["context"] = context
    return inputs


def best_of(chosen: EntryResult, entries: list[EntryResult]) -> str:
    """What the closing step states the answer from: the chosen entry's bottom line, else its
    answer; for an entry cut before its final step, the best answer before it (never its findings'
    status line; "" when there is none)."""
    if chosen.partial:
        return best_answers(entries).get(chosen.entry, "")
    return chosen.bottom_line or chosen.answer


async def close_run(state: RunState, prof: Profile, names: dict[str, str], run_entry: RunEntry) -> None:
    """Run the closing step after a profile's chain (see the module docstring) and set the answer."""
    result = state.result
    chosen = chain_choice(prof, result.entries)
    if not prof.closing_step or chosen is None or not best_of(chosen, result.entries):
        return  # nothing checked to state the answer from
    closing = EntryResult(entry=CLOSING_ENTRY, protocol=CLOSING.id, min_confidence=0.0)
    result.entries.append(closing)
    if state.check_budget():
        closing.status = "skipped"
        closing.skip_reason = state.exhausted or "budget spent"
        await state.emit(
            Event("entry_skipped", result.run_id, entry=CLOSING_ENTRY, message=closing.skip_reason)
        )
        return
    state.total += len(CLOSING.steps)
    query = str(result.inputs.get("query", ""))
    context = str(result.inputs.get("context") or "")
    closing.inputs = closing_inputs(result.entries[:-1], chosen, names, query, context)
    await run_entry(state, CLOSING, closing, None)
    profile_answer(prof, result, names)
