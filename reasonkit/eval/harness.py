"""Run a tool (protocol or profile) over labelled items through the run service, and the same items
through one direct call to the same provider and model (the baseline), grading both.

Each item runs like `rk think` would run it (`RunService.check` / `prepare` / `execute`: the same
budgets, small-model caps and any fitted calibrator), but unsaved in the run store. Every finished
item and arm is appended to the output folder at once (results.py), so an interrupted eval resumes
without repeating items.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from reasonkit.engine import Budget, RunResult
from reasonkit.engine.confidence import NO_CONFIDENCE
from reasonkit.engine.parsing import extract_object, read_confidence
from reasonkit.errors import InputError, ProviderError
from reasonkit.eval.datasets import FINAL_ANSWER_HINT, Dataset, Item
from reasonkit.eval.grading import final_answer, grade, short_answer
from reasonkit.eval.results import EvalLog, summarize_rows
from reasonkit.providers.base import LLMRequest, Provider
from reasonkit.run_request import RunKind
from reasonkit.runs import RunService

__all__ = [
    "DIRECT_MAX_TOKENS",
    "DIRECT_SYSTEM",
    "EVAL_METHOD",
    "EvalSpec",
    "NATIVE",
    "Progress",
    "direct_request",
    "run_direct",
    "run_eval",
    "run_tool",
    "tool_inputs",
]

EVAL_METHOD = "rk eval"
# Tools whose structured output gives the answer for a shipped set (grading.final_answer rules 1, 2):
# they get the item as it is; other tools get the set's question and the final-answer hint.
NATIVE = {"proofguard": "claims", "laserlogic": "arguments"}
DIRECT_SYSTEM = (
    "Answer the question. Reply with a JSON object: `answer`: the final answer alone (a word, a "
    "number or a short phrase), and `confidence`: your probability (0 to 1) that the answer is correct."
)
DIRECT_MAX_TOKENS = 512
Progress = Callable[[int, int, str], None]


@dataclass
class EvalSpec:
    kind: RunKind
    name: str
    dataset: Dataset
    baseline: bool = True
    concurrency: int = 1
    budget: Budget | None = None


def _question(spec: EvalSpec, item: Item) -> str:
    task = spec.dataset.task
    if task and NATIVE.get(spec.name) != spec.dataset.name:
        return f"{task}\n\n{item.question}"
    return item.question


def _hint(spec: EvalSpec, item: Item) -> str:
    if spec.kind == "protocol" and NATIVE.get(spec.name) == spec.dataset.name:
        return ""
    choices = f" Answer with one of: {', '.join(item.choices)}." if item.choices else ""
    return FINAL_ANSWER_HINT + choices


def tool_inputs(service: RunService, spec: EvalSpec, item: Item) -> dict[str, Any]:
    """The inputs of one item: the question in the target's main input, the context (and the
    final-answer hint, for tools graded from their text) in `context` when the target has one."""
    specs = service.target_inputs(spec.kind, spec.name)
    main = next((n for n, s in specs.items() if s.required), next(iter(specs), "query"))
    question = _question(spec, item)
    context = "\n\n".join(part for part in (item.context, _hint(spec, item)) if part)
    inputs: dict[str, Any] = {main: question}
    if context and "context" in specs and main != "context":
        inputs["context"] = context
    elif context:
        inputs[main] = f"{question}\n\n{context}"
    return inputs


def _row(item: Item, arm: str, answer: str, **fields: Any) -> dict[str, Any]:
    correct, score = grade(item, answer) if not fields.get("error") else (False, 0.0)
    return {
        "id": item.id,
        "arm": arm,
        "expected": item.answer,
        "answer": answer[:500],
        "correct": correct,
        "score": round(score, 4),
        **fields,
    }


async def run_tool(service: RunService, provider: Provider, spec: EvalSpec, item: Item) -> dict[str, Any]:
    """One item through the run service; its graded row."""
    started = time.monotonic()
    try:
        clean = service.check(spec.kind, spec.name, tool_inputs(service, spec, item), method=EVAL_METHOD)
    except InputError as exc:
        return _row(
            item,
            "tool",
            "",
            confidence=0.0,
            confidence_raw=0.0,
            status="failed",
            tokens=0,
            cost_usd=0.0,
            duration_s=0.0,
            provider=provider.name,
            model=provider.model,
            error=str(exc),
        )
    run = service.prepare(spec.kind, spec.name, clean, provider, method=EVAL_METHOD)
    result: RunResult = await service.execute(run, service.budget(spec.budget))
    error = "; ".join(result.errors) if result.status == "failed" else None
    raw = result.confidence_raw if result.confidence_raw is not None else result.confidence
    return _row(
        item,
        "tool",
        final_answer(result),
        confidence=round(result.confidence, 6),
        confidence_raw=round(raw, 6),
        status=result.status,
        tokens=result.tokens.total,
        cost_usd=result.cost_usd,
        duration_s=round(time.monotonic() - started, 3),
        provider=result.provider,
        model=result.model,
        run_id=result.run_id,
        **({"error": error} if error else {}),
    )


def direct_request(spec: EvalSpec, item: Item, temperature: float | None) -> LLMRequest:
    """The baseline: the item (with the set's question and the context) in one plain request."""
    parts = [p for p in (spec.dataset.task, item.question) if p]
    if item.context:
        parts.append(f"Context:\n{item.context}")
    answer: dict[str, Any] = {"type": "string", "description": "The final answer alone."}
    if item.choices:
        answer["enum"] = list(item.choices)
        parts.append(f"Answer with one of: {', '.join(item.choices)}.")
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["answer", "confidence"],
        "properties": {
            "answer": answer,
            "confidence": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "Probability (0-1) that the answer is correct.",
            },
        },
    }
    return LLMRequest(
        messages=[{"role": "user", "content": "\n\n".join(parts)}],
        system=DIRECT_SYSTEM,
        schema=schema,
        schema_name="answer",
        temperature=temperature,
        max_tokens=DIRECT_MAX_TOKENS,
    )


async def run_direct(
    provider: Provider, spec: EvalSpec, item: Item, temperature: float | None
) -> dict[str, Any]:
    """One item by one direct call; its graded row (a provider error is a wrong answer, kept)."""
    started = time.monotonic()
    base = {"provider": provider.name, "model": provider.model}
    try:
        response = await provider.complete(direct_request(spec, item, temperature))
    except ProviderError as exc:
        return _row(
            item,
            "direct",
            "",
            confidence=0.0,
            confidence_raw=0.0,
            status="failed",
            tokens=0,
            cost_usd=0.0,
            duration_s=round(time.monotonic() - started, 3),
            error=str(exc),
            **base,
        )
    # read like a step's reply: the JSON object (also from prose or a code fence), the confidence by
    # the engine's rules ("85%" -> 0.85; missing or unreadable -> 0.5, as for a step)
    parsed = response.parsed if response.parsed is not None else extract_object(response.text).obj
    parsed = parsed if isinstance(parsed, dict) else {}
    answer = short_answer(str(parsed["answer"]) if "answer" in parsed else response.text)
    value, _ = read_confidence(parsed)
    confidence = NO_CONFIDENCE if value is None else value
    return _row(
        item,
        "direct",
        answer,
        confidence=confidence,
        confidence_raw=confidence,
        status="complete",
        tokens=response.usage.total,
        cost_usd=response.cost_usd,
        duration_s=round(time.monotonic() - started, 3),
        provider=response.provider,
        model=response.model,
    )


async def run_eval(
    service: RunService,
    provider: Provider,
    spec: EvalSpec,
    log: EvalLog,
    meta: dict[str, Any],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every item and arm not yet in `log`, then summarise the selected items."""
    log.start(meta)
    done = log.done()
    arms = ["tool", "direct"] if spec.baseline else ["tool"]
    todo = [(item, arm) for item in spec.dataset.items for arm in arms if (item.id, arm) not in done]
    total, finished = len(spec.dataset.items) * len(arms), len(spec.dataset.items) * len(arms) - len(todo)
    limiter = anyio.CapacityLimiter(max(1, spec.concurrency))
    temperature = service.settings.llm.temperature

    async def one(item: Item, arm: str) -> None:
        nonlocal finished
        async with limiter:
            if arm == "tool":
                row = await run_tool(service, provider, spec, item)
            else:
                row = await run_direct(provider, spec, item, temperature)
        log.append(row)
        finished += 1
        if progress is not None:
            verdict = "correct" if row["correct"] else "wrong"
            line = f"{item.id} {arm}: {verdict} ({row['answer'][:40]!r}, confidence {row['confidence']:.2f})"
            progress(finished, total, line + (f" error: {row['error'][:120]}" if row.get("error") else ""))

    async with anyio.create_task_group() as group:
        for item, arm in todo:
            group.start_soon(one, item, arm)
    summary = summarize_rows(log.rows(), meta, [item.id for item in spec.dataset.items])
    log.write_summary(summary)
    return summary
