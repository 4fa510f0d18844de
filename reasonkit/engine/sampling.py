"""One sample of a step: a model call, parsing and checking of its reply, at most one repair call,
and the item bounds. A step makes one per `samples`; engine/steps.py chooses among them. Kept apart
from the step runner because it is the one place a reply's problems are repaired or salvaged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonkit.engine.budget import RunState
from reasonkit.engine.parsing import items_field, relaxed_schema
from reasonkit.engine.reply import call_model, parse_reply
from reasonkit.engine.result import StepTrace
from reasonkit.engine.salvage import drop_invalid_fields, drop_invalid_items
from reasonkit.errors import ProviderError
from reasonkit.protocol.models import ChainEntry, Step
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider

REPAIR_PROMPT = (
    "Your previous reply could not be used: {problems}\n"
    "Reply again with the complete, corrected JSON object for the same task. Keep the content you "
    "already had; do not add facts you did not have. Include every required field."
)

# Stop reasons of a reply cut before its end -> how its note says it
CUT = {"max_tokens": "at max_tokens", "repetition": "for repetition"}


@dataclass
class Sample:
    """One sample of a step: a call, its parsing and at most one repair call."""

    ok: bool
    output: dict[str, Any] | None = None
    model_confidence: float | None = None  # already read into 0..1; None when missing or unreadable
    repaired: bool = False  # a repair call was made (whether or not it helped)
    degraded: bool = False  # still invalid after repair (invalid fields dropped) or cut and salvaged
    truncated: bool = False  # the reply used hit max_tokens
    items: int | None = None  # items in the step's items field, after removing repeats and trimming
    notes: list[str] = field(default_factory=list)
    raw: str = ""  # the first reply's text
    error: str | None = None  # why there is no output (ok is False)


async def _call_or_error(
    provider: Provider, state: RunState, request: LLMRequest, purpose: str, trace: StepTrace
) -> LLMResponse | ProviderError:
    try:
        return await call_model(provider, state, request, purpose, trace)
    except ProviderError as exc:
        return exc


MIN_FITTED_TOKENS = 128  # a reply with less room than this is not worth a second call
WINDOW_MARGIN = 16  # tokens kept free: servers count the chat template slightly differently


def fitting_max_tokens(exc: ProviderError, max_tokens: int) -> int | None:
    """For a context overflow whose prompt fits the window but whose prompt + max_tokens does not
    (the server said both sizes): the max_tokens that fit, else None. A 4096-token llama.cpp server
    refused GigaThink's synthesis (4199 + 5000 tokens) although the prompt left room for a reply."""
    if exc.kind != "context_overflow" or exc.window is None or exc.prompt_tokens is None:
        return None
    room = exc.window - exc.prompt_tokens - WINDOW_MARGIN
    return room if MIN_FITTED_TOKENS <= room < max_tokens else None


def provider_error_text(step: Step, exc: ProviderError) -> str:
    if exc.kind == "context_overflow":
        return f"step '{step.id}': the prompt does not fit the model's context window ({exc})"
    return str(exc)


async def take_sample(
    provider: Provider,
    default_temperature: float | None,
    state: RunState,
    step: Step,
    trace: StepTrace,
    entry: ChainEntry | None,
    system: str,
    prompt: str,
    max_tokens: int,
    n: int,
) -> Sample:
    """One sample: a call, parsing, at most one repair call. Provider errors become a failed Sample."""
    temperature: float | None
    if entry and entry.temperature is not None:
        temperature = entry.temperature
    elif step.temperature is not None:
        temperature = step.temperature
    else:
        temperature = default_temperature
    messages = [{"role": "user", "content": prompt}]

    def request(msgs: list[dict[str, str]]) -> LLMRequest:
        return LLMRequest(
            messages=msgs,
            system=system,
            schema=step.output,
            schema_name=f"{step.id}_result",
            temperature=temperature,
            max_tokens=max_tokens,
            on_text=state.text_sink(trace),
        )

    purpose = "main" if n == 1 else f"sample {n}"
    try:
        resp = await call_model(provider, state, request(messages), purpose, trace)
        fit_note = None
    except ProviderError as exc:
        fitted = fitting_max_tokens(exc, max_tokens)
        if fitted is None:
            return Sample(ok=False, error=provider_error_text(step, exc))
        fit_note = f"max_tokens {max_tokens} -> {fitted} to fit the model's {exc.window}-token context window"
        max_tokens = fitted  # also for the repair call below
        first = await _call_or_error(
            provider, state, request(messages), f"{purpose}, fitted to the context window", trace
        )
        if isinstance(first, ProviderError):
            return Sample(ok=False, error=provider_error_text(step, first), notes=[fit_note])
        resp = first
    parsed = parse_reply(step, resp)
    obj, problems, notes = parsed.obj, parsed.problems, parsed.notes
    notes[:0] = [fit_note] if fit_note else []
    truncated = resp.stop_reason in CUT
    repaired = degraded = False
    if truncated and parsed.salvaged and obj is not None:
        # A repair call would be cut at the same limit (or loop again): keep what the model wrote.
        degraded = True
        notes.append(f"reply cut {CUT[resp.stop_reason]}, {_salvaged_count(step, obj)} salvaged")
    elif problems and not state.check_budget():
        repair_messages = messages + [
            {"role": "assistant", "content": resp.text or "(empty reply)"},
            {"role": "user", "content": REPAIR_PROMPT.format(problems="; ".join(problems))},
        ]
        purpose = "repair" if n == 1 else f"repair of sample {n}"
        try:
            repair_resp = await call_model(provider, state, request(repair_messages), purpose, trace)
        except ProviderError as exc:
            notes.append(f"repair call failed: {provider_error_text(step, exc)}")
        else:
            again = parse_reply(step, repair_resp)
            notes.append("repair call made: " + "; ".join(problems[:3]))
            better = not again.problems or obj is None or len(again.problems) < len(problems)
            if again.obj is not None and better:
                obj, problems = again.obj, again.problems
                truncated = repair_resp.stop_reason in CUT
                notes += again.notes
            repaired = True
    if obj is None:
        return Sample(
            ok=False, error="no usable output: " + "; ".join(problems[:3]), notes=notes, raw=resp.text
        )
    if problems:
        schema = relaxed_schema(step)
        trimmed = drop_invalid_items(obj, schema)
        removed = drop_invalid_fields(obj, schema)
        degraded = True
        dropped = "".join(f"; {note}" for note in trimmed)
        dropped += f"; dropped fields: {', '.join(removed)}" if removed else ""
        notes.append("output still invalid after repair: " + "; ".join(problems[:3]) + dropped)
    model_confidence = obj.get("confidence")
    if isinstance(model_confidence, bool) or not isinstance(model_confidence, int | float):
        model_confidence = None
    count = _bound_items(step, obj, notes)
    return Sample(
        ok=True,
        output=obj,
        model_confidence=None if model_confidence is None else float(model_confidence),
        repaired=repaired,
        degraded=degraded,
        truncated=truncated,
        items=count,
        notes=notes,
        raw=resp.text,
    )


def _bound_items(step: Step, obj: dict[str, Any], notes: list[str]) -> int | None:
    """Item bounds: too many items are trimmed (noted); too few lower the confidence, so the count
    comes back (0 when the items field is missing but a minimum is set; None when nothing is counted)."""
    name = items_field(step)
    if name and isinstance(obj.get(name), list):
        if step.max_items is not None and len(obj[name]) > step.max_items:
            notes.append(f"{len(obj[name])} items in '{name}', trimmed to max_items {step.max_items}")
            obj[name] = obj[name][: step.max_items]
        return len(obj[name])
    if name and step.min_items:
        return 0
    return None


def _salvaged_count(step: Step, obj: dict[str, Any]) -> str:
    name = items_field(step)
    if name and isinstance(obj.get(name), list):
        count = len(obj[name])
        return f"{count} item{'' if count == 1 else 's'}"
    count = len([k for k in obj if k != "confidence"])
    return f"{count} field{'' if count == 1 else 's'}"
