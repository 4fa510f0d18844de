"""Where a run's answer comes from, in one place (the rule is documented in docs/confidence.md,
"Where the answer comes from").

- A protocol run's answer is its result step's `field` (`[result]` in the protocol). When that step
  finished but left the field empty, the run is still complete: the step is marked `degraded` with a
  note and the answer is taken from the step's `bottom_line` field, else from what the steps found.
  Only an entry cut before its final step reports "did not reach its final step" (`partial`).
- A profile with a closing step (engine/closing.py) answers with that step's answer, which states
  the answer to the question from the chosen entry's; the result names both ("closing step, after
  ProofGuard"). When the step did not run or failed, the rule below stands.
- A profile's answer is the answer of the entry named by `answer_from`, else of the last entry
  that completed. It leads with that entry's bottom line ("**Answer:** ..."), which each checking
  tool writes as the answer to the user's question as far as its check supports it, followed by
  the tool's report; the result names the entry and the tool (`answer_entry`, `answer_tool`).
- The chain hands a later tool the best answer so far (`best_answers`): a partial entry's findings
  are never passed on as if they were an answer.
"""

from __future__ import annotations

import re

from reasonkit.engine.result import EntryResult, RunResult, StepTrace
from reasonkit.protocol.models import Profile, Protocol
from reasonkit.protocol.template import to_text

FINISHED_STEP = ("ok", "degraded")
# The entry id of a profile's closing step (engine/closing.py), after the chain's own entries
CLOSING_ENTRY = "closing"
_LABEL = re.compile(r"^\W*(?:bottom\s+line|answer)\W*[:：]\s*", re.IGNORECASE)


def _field_text(output: dict[str, object], name: str | None) -> str:
    return to_text(output.get(name, "")).strip() if name else ""


def entry_answer(proto: Protocol, entry_result: EntryResult) -> None:
    """Set the answer, bottom line and `partial` flag of one protocol run from its step traces."""
    trace = next((t for t in entry_result.steps if t.step_id == proto.result.step), None)
    output = trace.output if trace is not None and trace.status in FINISHED_STEP else None
    entry_result.partial = False
    if trace is not None and isinstance(output, dict):
        entry_result.output = output
        entry_result.bottom_line = _field_text(output, proto.result.bottom_line)
        answer = _field_text(output, proto.result.field)
        if not answer:
            answer = entry_result.bottom_line or findings(entry_result)
            _degrade_empty(trace, proto.result.field, "its bottom line" if entry_result.bottom_line else None)
        entry_result.answer = answer
        return
    found = findings(entry_result)
    entry_result.partial = bool(found)
    entry_result.answer = (
        f"{proto.name} did not reach its final step; partial findings:\n{found}" if found else ""
    )


def _degrade_empty(trace: StepTrace, field: str, source: str | None) -> None:
    note = f"the final step's `{field}` was empty; the answer is taken from " + (
        source or "what the steps found"
    )
    trace.status = "degraded"
    if note not in trace.notes:
        trace.notes.append(note)


def findings(entry_result: EntryResult) -> str:
    """What the finished steps found: the first text field of each output, never invented."""
    lines = []
    for trace in entry_result.steps:
        if trace.status not in FINISHED_STEP or trace.output is None:
            continue
        outputs = trace.output if isinstance(trace.output, list) else [trace.output]
        snippets = []
        for output in outputs:
            if isinstance(output, dict):
                text = next(
                    (
                        v.strip()
                        for k, v in output.items()
                        if k != "confidence" and isinstance(v, str) and v.strip()
                    ),
                    "",
                )
                if text:
                    snippets.append(text)
        if snippets:
            lines.append(f"- {trace.step_id}: " + " | ".join(s[:300] for s in snippets[:12]))
    return "\n".join(lines)


def best_answers(entries: list[EntryResult]) -> dict[str, str]:
    """The answer each finished entry hands to later tools: its own, or, for an entry cut before its
    final step, the latest real answer before it in the chain ("" when there is none)."""
    best, out = "", {}
    for entry_result in entries:
        if entry_result.status not in ("complete", "incomplete") or not entry_result.answer:
            continue
        if not entry_result.partial:
            best = entry_result.answer
        out[entry_result.entry] = best
    return out


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[*_`]+", "", text).split()).casefold()


def lead_with(bottom_line: str, report: str) -> str:
    """`report` led by its bottom line as "**Answer:** ...": a first paragraph that states the same
    bottom line is relabelled rather than repeated; one that already starts with it is kept."""
    first, _, rest = report.strip().partition("\n\n")
    stated = _normal(_LABEL.sub("", re.sub(r"[*_`]+", "", first)))
    if stated == _normal(bottom_line):
        return f"**Answer:** {bottom_line}" + (f"\n\n{rest.strip()}" if rest.strip() else "")
    if stated.startswith(_normal(bottom_line)):
        return report.strip()
    return f"**Answer:** {bottom_line}" + (f"\n\n{report.strip()}" if report.strip() else "")


def chain_choice(prof: Profile, entries: list[EntryResult]) -> EntryResult | None:
    """The chain entry whose answer is the best checked one: `answer_from`, else the last entry
    that completed with an answer, else the last with any answer (the closing step is no candidate)."""
    chain = [e for e in entries if e.entry != CLOSING_ENTRY]
    chosen = None
    if prof.answer_from:
        chosen = next(
            (e for e in chain if e.entry == prof.answer_from and e.answer and e.status != "skipped"),
            None,
        )
    if chosen is None:
        chosen = next((e for e in reversed(chain) if e.answer and e.status == "complete"), None)
    if chosen is None:
        chosen = next((e for e in reversed(chain) if e.answer), None)
    return chosen


def profile_answer(prof: Profile, result: RunResult, names: dict[str, str]) -> None:
    """Set the profile's answer and where it came from (`names`: protocol id -> tool name): the
    closing step's answer when it completed, else the chosen entry's, led by its bottom line."""
    chosen = chain_choice(prof, result.entries)
    if chosen is None:
        result.answer, result.answer_entry, result.answer_tool = "", "", ""
        return
    tool = names.get(chosen.protocol, chosen.protocol)
    closing = next((e for e in result.entries if e.entry == CLOSING_ENTRY), None)
    if closing is not None and closing.status == "complete" and closing.answer:
        result.answer = closing.answer
        result.answer_entry, result.answer_tool = CLOSING_ENTRY, f"closing step, after {tool}"
        return
    answer = lead_with(chosen.bottom_line, chosen.answer) if chosen.bottom_line else chosen.answer
    result.answer = answer
    result.answer_entry, result.answer_tool = chosen.entry, tool
