"""Labelled items for `rk eval`: the sets shipped with the package, reasoning-gym tasks (generated
offline from a seed), and user JSONL files.

A dataset is named by one of:
- a shipped set: `claims` (true/false factual claims, for ProofGuard) or `arguments` (arguments
  labelled valid/invalid, with the fallacy, for LaserLogic); see `SHIPPED`;
- `rg:<task>`: a reasoning-gym task, e.g. `rg:basic_arithmetic`, `rg:syllogism` (needs the
  `reasoning-gym` package, in the `eval` extra); graded by the task's own `score_answer`;
- a path to a JSONL file, one object per line: `question`, `answer`, optional `id`, `context`,
  `grading` (exact | numeric | choice | contains; default exact) and `choices` (for choice).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, get_args

from reasonkit import jsonguard
from reasonkit.errors import EvalError, JsonDepthError

__all__ = [
    "DEFAULT_RG_SIZE",
    "Dataset",
    "FINAL_ANSWER_HINT",
    "GRADINGS",
    "Grading",
    "Item",
    "RG_PREFIX",
    "SHIPPED",
    "TASKS",
    "load_dataset",
    "parse_jsonl",
]

Grading = Literal["exact", "numeric", "choice", "contains"]
GRADINGS: tuple[str, ...] = get_args(Grading)
SHIPPED = {
    "claims": "proofguard_claims.jsonl",
    "arguments": "laserlogic_arguments.jsonl",
}
# What each shipped set asks, for the direct baseline's prompt.
TASKS = {
    "claims": "Is the following claim true or false?",
    "arguments": "Is the following argument logically valid (its conclusion follows from its premises) "
    "or invalid (it commits a fallacy)?",
}
RG_PREFIX = "rg:"
DEFAULT_RG_SIZE = 20
# The instruction that asks a tool for a final answer a grader can read (see grading.final_answer).
# No angle brackets: the hint travels in an input, where a tag-like "<" is quoted (protocol/template.py).
FINAL_ANSWER_HINT = "End your answer with one line of the form 'Final answer: ANSWER', with the answer alone."


@dataclass
class Item:
    """One labelled question."""

    id: str
    question: str
    answer: str
    grading: Grading = "exact"
    context: str | None = None
    choices: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # The dataset's own scorer (reasoning-gym): short answer -> score in [0, 1]; 1 is correct.
    scorer: Callable[[str], float] | None = None


@dataclass
class Dataset:
    name: str
    items: list[Item]
    task: str = ""  # the question asked of every item (shipped sets); empty: the item says it all
    source: str = "jsonl"  # shipped | reasoning-gym | jsonl


def _item(row: Any, where: str, index: int) -> Item:
    if not isinstance(row, dict):
        raise EvalError(f"{where}: line {index}: expected a JSON object")
    for key in ("question", "answer"):
        if not isinstance(row.get(key), str | int | float) or isinstance(row.get(key), bool):
            raise EvalError(f"{where}: line {index}: `{key}` is required (a string)")
    grading = row.get("grading", "exact")
    if grading not in GRADINGS:
        raise EvalError(
            f"{where}: line {index}: grading must be one of {', '.join(GRADINGS)}, not {grading!r}"
        )
    choices = row.get("choices")
    if choices is not None and (
        not isinstance(choices, list) or not all(isinstance(c, str) for c in choices)
    ):
        raise EvalError(f"{where}: line {index}: `choices` must be a list of strings")
    if grading == "choice" and not choices:
        raise EvalError(f"{where}: line {index}: grading 'choice' needs `choices`")
    context = row.get("context")
    known = {"id", "question", "answer", "grading", "choices", "context"}
    return Item(
        id=str(row.get("id") or f"item-{index:04d}"),
        question=str(row["question"]),
        answer=str(row["answer"]),
        grading=grading,
        context=str(context) if context else None,
        choices=choices,
        meta={k: v for k, v in row.items() if k not in known},
    )


def parse_jsonl(text: str, where: str) -> list[Item]:
    items: list[Item] = []
    for index, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = jsonguard.loads(line)
        except JsonDepthError as exc:
            raise EvalError(f"{where}: line {index}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise EvalError(f"{where}: line {index}: not JSON: {exc.msg}") from None
        items.append(_item(row, where, index))
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise EvalError(f"{where}: the id {dup!r} is used twice (ids must be unique)")
    if not items:
        raise EvalError(f"{where}: no items")
    return items


def _reasoning_gym(task: str, size: int, seed: int) -> Dataset:
    try:
        import reasoning_gym
    except ImportError:
        raise EvalError("reasoning-gym datasets need the eval extra: pip install 'reasonkit[eval]'") from None
    try:
        generated = reasoning_gym.create_dataset(task, size=size, seed=seed)
    except Exception as exc:  # noqa: BLE001 - unknown task names raise a plain error there
        raise EvalError(f"reasoning-gym has no task {task!r} ({type(exc).__name__}: {exc})") from None
    items = []
    for index, entry in enumerate(generated):
        answer = entry.get("answer")
        if answer is None:
            continue  # tasks with open answers (no reference) cannot be graded by a reference

        def scorer(short: str, entry: dict[str, Any] = entry) -> float:
            return float(generated.score_answer(short, entry) or 0.0)

        items.append(
            Item(
                id=f"{task}-{seed}-{index:04d}",
                question=str(entry["question"]),
                answer=str(answer),
                grading="exact",
                scorer=scorer,
            )
        )
    if not items:
        raise EvalError(f"reasoning-gym task {task!r} has no reference answers to grade against")
    return Dataset(f"{RG_PREFIX}{task}", items, source="reasoning-gym")


def load_dataset(name: str, *, n: int | None = None, seed: int = 0) -> Dataset:
    """The dataset `name` (see the module docstring), cut to `n` items chosen by `seed` (the same
    name, n and seed always give the same items in the same order)."""
    if name.startswith(RG_PREFIX):
        task = name[len(RG_PREFIX) :].strip()
        if not task:
            raise EvalError("give a reasoning-gym task after 'rg:', e.g. rg:basic_arithmetic")
        return _reasoning_gym(task, n or DEFAULT_RG_SIZE, seed)
    if name in SHIPPED:
        text = files("reasonkit.eval").joinpath("datasets", SHIPPED[name]).read_text("utf-8")
        dataset = Dataset(name, parse_jsonl(text, name), task=TASKS.get(name, ""), source="shipped")
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            shipped = ", ".join(sorted(SHIPPED))
            raise EvalError(
                f"unknown dataset {name!r}: give a shipped set ({shipped}), rg:<reasoning-gym task> "
                "or a JSONL file"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise EvalError(f"{path}: cannot be read: {exc}") from None
        dataset = Dataset(path.stem, parse_jsonl(text, str(path)))
    if n is not None and n < len(dataset.items):
        chosen = sorted(random.Random(seed).sample(range(len(dataset.items)), n))
        dataset.items = [dataset.items[i] for i in chosen]
    return dataset
