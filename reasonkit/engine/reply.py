"""One model call and its reply: the call recorded on the step's trace (tokens, cost, stop reason),
and the reply read into an object checked against the step's schema."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from reasonkit.engine.budget import RunState, unenforced_budget
from reasonkit.engine.parsing import (
    coerce_numbers,
    dedupe_lists,
    extract_object,
    normalize_confidence,
    relaxed_schema,
    schema_errors,
)
from reasonkit.engine.result import CallTrace, StepTrace, Tokens
from reasonkit.errors import ProviderError
from reasonkit.protocol.models import Step
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider


@dataclass
class Parsed:
    obj: dict[str, Any] | None
    problems: list[str]
    notes: list[str]
    salvaged: bool  # unfinished JSON whose complete prefix was kept


async def call_model(
    provider: Provider, state: RunState, req: LLMRequest, purpose: str, trace: StepTrace
) -> LLMResponse:
    """One provider call, recorded on the step trace and counted in the run's tokens and cost."""
    call = CallTrace(purpose=purpose)
    t0 = time.monotonic()
    try:
        async with state.limiter:
            resp = await provider.complete(req)
    except ProviderError as exc:
        call.error = str(exc)
        call.duration_ms = (time.monotonic() - t0) * 1000
        trace.calls.append(call)
        state.halt_on(exc)
        raise
    call.raw_response = resp.text
    call.stop_reason = resp.stop_reason
    call.tokens = Tokens(**resp.usage.as_dict())
    call.cost_usd = resp.cost_usd
    call.price_known = resp.price_known
    call.duration_ms = (time.monotonic() - t0) * 1000
    call.provider, call.model, call.attempts = resp.provider, resp.model, resp.attempts
    call.cached, call.cache_layer, call.fallbacks = resp.cached, resp.cache_layer, list(resp.fallbacks)
    trace.calls.append(call)
    trace.tokens.add(call.tokens)
    trace.cost_usd += resp.cost_usd
    trace.provider, trace.model = resp.provider, resp.model
    result = state.result
    result.tokens.add(call.tokens)
    result.cost_usd += resp.cost_usd
    result.price_known = result.price_known and resp.price_known
    if not resp.price_known and result.budget_note is None:
        result.budget_note = unenforced_budget(state.budget.usd, [resp.model])
    return resp


def parse_reply(step: Step, resp: LLMResponse) -> Parsed:
    """The reply as an object, with its schema problems and notes on what recovery did."""
    notes: list[str] = []
    obj = resp.parsed
    salvaged = False
    if obj is None:
        extraction = extract_object(resp.text)
        obj, notes, salvaged = extraction.obj, list(extraction.notes), extraction.salvaged
    if obj is None:
        return Parsed(None, ["no JSON object could be read from the reply"], notes, False)
    obj = dict(obj)
    schema = relaxed_schema(step)
    notes += normalize_confidence(obj)
    notes += dedupe_lists(obj)
    notes += coerce_numbers(obj, schema)
    problems = schema_errors(obj, schema)
    if resp.stop_reason == "max_tokens":
        notes.append("reply hit max_tokens")
    elif resp.stop_reason == "repetition":
        notes.append("reply cut for repetition: the model was repeating itself")
    return Parsed(obj, problems, notes, salvaged)
