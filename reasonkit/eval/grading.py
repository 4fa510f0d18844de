"""From a tool's result to a short final answer, and from that answer to correct or not.

`final_answer(result)` is the documented reduction (docs/calibration.md, "How answers are graded"):

1. ProofGuard: the triangulation grade, not the report's prose: HIGH or MEDIUM -> "true",
   FLAG -> "false", LOW -> "unverified" (the claim was neither confirmed nor contradicted, which
   is graded wrong whatever the label).
2. LaserLogic: "invalid" when its fallacy step found a fallacy of severity "critical" (the
   conclusion depends on it), else the `validity` of its assessment: "valid", "invalid" or
   "unclear".
3. Every other tool and profile: `short_answer(result.answer)`: the text after the last
   "Final answer:" line (the harness asks for one), else after the first "Answer:" or
   "Bottom line:" line, else the first non-empty line; markdown emphasis and a trailing full stop
   removed.

For a profile the rule of the entry whose answer the profile returned applies.

`grade(item, answer)`: the dataset's own scorer when it has one (reasoning-gym; correct = score 1),
else the item's `grading`: exact (equal after normalising case, spaces, quotes and end
punctuation), numeric (the first number in the answer equals the reference within 1e-6 relative),
choice (the answer is one of `choices`, or exactly one choice occurs in it as a word, and that is
the reference), contains (the normalised reference occurs in the normalised answer).
"""

from __future__ import annotations

import re
from typing import Any

from reasonkit.engine.result import EntryResult, RunResult
from reasonkit.eval.datasets import Item

PROOFGUARD_GRADES = {"HIGH": "true", "MEDIUM": "true", "FLAG": "false", "LOW": "unverified"}
_FINAL = re.compile(r"final\s+answer\s*[:：]\s*(.+)", re.IGNORECASE)
_LABELLED = re.compile(r"^\W*(?:answer|bottom\s+line)\W*[:：]\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"[-+−]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+")


def _clean(text: str) -> str:
    text = re.sub(r"[*_`]+", "", text).strip()
    text = re.sub(r"\s+", " ", text)
    return text.rstrip(".").strip()


def short_answer(text: str) -> str:
    """The short final answer in a tool's markdown answer (rule 3 above)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    finals = [m.group(1) for line in lines if (m := _FINAL.search(_strip_md(line)))]
    if finals:
        return _clean(finals[-1])
    for line in lines:
        match = _LABELLED.match(_strip_md(line))
        if match:
            return _clean(match.group(1))
    return _clean(lines[0].lstrip("#").strip()) if lines else ""


def _strip_md(line: str) -> str:
    return re.sub(r"[*_`]+", "", line)


def _step_output(entry: EntryResult, step_id: str) -> Any:
    for step in entry.steps:
        if step.step_id == step_id and step.status in ("ok", "degraded"):
            return step.output
    return None


def _answer_entry(result: RunResult) -> EntryResult | None:
    if result.kind == "protocol":
        return result.entries[0] if result.entries else None
    if result.answer_entry:
        return next((e for e in result.entries if e.entry == result.answer_entry), None)
    return next((e for e in reversed(result.entries) if e.answer and e.answer == result.answer), None)


def final_answer(result: RunResult) -> str:
    """The short final answer of a run (see the module docstring)."""
    entry = _answer_entry(result)
    if entry is not None and entry.protocol == "proofguard":
        output = _step_output(entry, "triangulate")
        if isinstance(output, dict) and output.get("grade") in PROOFGUARD_GRADES:
            return PROOFGUARD_GRADES[output["grade"]]
    if entry is not None and entry.protocol == "laserlogic":
        fallacies = _step_output(entry, "fallacies")
        found = fallacies.get("fallacies") if isinstance(fallacies, dict) else None
        if isinstance(found, list) and any(
            isinstance(f, dict) and f.get("severity") == "critical" for f in found
        ):
            return "invalid"
        assessment = _step_output(entry, "assess")
        if isinstance(assessment, dict) and assessment.get("validity") in ("valid", "invalid", "unclear"):
            return str(assessment["validity"])
    return short_answer(result.answer)


def normalize(text: str) -> str:
    text = _clean(str(text)).lower()
    text = text.strip(" \t\"'“”‘’()[]{}<>.,;:!?")
    return re.sub(r"\s+", " ", text)


def first_number(text: str) -> float | None:
    match = _NUMBER.search(text or "")
    if match is None:
        return None
    try:
        return float(match.group(0).replace(",", "").replace("−", "-"))
    except ValueError:
        return None


def chosen(item: Item, answer: str) -> str | None:
    """The choice an answer picks: equal to one, else the only one that occurs in it as a word."""
    norm = normalize(answer)
    choices = {normalize(c): c for c in item.choices or []}
    if norm in choices:
        return choices[norm]
    present = [c for key, c in choices.items() if re.search(rf"\b{re.escape(key)}\b", norm)]
    return present[0] if len(present) == 1 else None


def grade(item: Item, answer: str) -> tuple[bool, float]:
    """(correct, score in [0, 1]) of a short answer for an item (see the module docstring)."""
    if item.scorer is not None:
        try:
            score = max(0.0, min(1.0, float(item.scorer(answer))))
        except Exception:  # noqa: BLE001 - a scorer that chokes on an odd answer: wrong, not a crash
            score = 0.0
        return score >= 1.0 - 1e-9, score
    if item.grading == "numeric":
        got, expected = first_number(answer), first_number(item.answer)
        ok = (
            got is not None and expected is not None and abs(got - expected) <= 1e-6 * max(1.0, abs(expected))
        )
    elif item.grading == "choice":
        pick = chosen(item, answer)
        ok = pick is not None and normalize(pick) == normalize(item.answer)
    elif item.grading == "contains":
        ok = bool(normalize(item.answer)) and normalize(item.answer) in normalize(answer)
    else:
        ok = normalize(answer) == normalize(item.answer)
    return ok, 1.0 if ok else 0.0
