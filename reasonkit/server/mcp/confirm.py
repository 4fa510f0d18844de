"""`[server] confirm_above_usd`: ask the client's user before a ThinkTool call whose estimated cost is
over it, and do not run it unless they say yes.

How the question travels depends on the connection:
- handshake-era (2025) sessions with a way back (stdio, stateful HTTP): `elicitation/create` in form
  mode (one boolean `confirm`), through the SDK, while the call waits;
- 2026-07-28 requests: the call ends with an `InputRequiredResult` holding that same elicitation
  under `confirm_cost`; the client asks its user and retries the call with the answer in
  `inputResponses`. No `requestState` is needed: the retry carries all the server needs, so any
  replica can take it, and an answer the client sends unasked is its own answer to give.

Only an `accept` whose `confirm` is true runs the call. A decline, a cancel or an accept with
`confirm` false is stored as a `cancelled` run whose stop reason says it was declined (so `rk runs`
lists it) and the call ends with a tool error saying it did not run. A client that cannot be asked
(no elicitation capability; stateless handshake-era HTTP) gets the call run as without the setting,
or refused with `[server] confirm_unsupported = "refuse"`.

The estimate (`estimated_cost`) is an upper bound: every model call of the slow estimate
(estimates.py), each with its step's whole output allowance and a prompt the size of the longest step
prompt plus the inputs and one earlier output, priced by the run's model in the price table. A model
with no known price costs 0 and is never asked about.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import mcp_types as types
from loguru import logger
from mcp.server.context import ServerRequestContext
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from reasonkit.config import Settings
from reasonkit.errors import ConfirmationPending, NotConfirmed
from reasonkit.protocol.loader import Registry
from reasonkit.server.mcp.estimates import pace_for, protocol_estimate

if TYPE_CHECKING:
    from reasonkit.live_runs import PreparedRun
    from reasonkit.server.mcp.core import ServerCore

#: the key of the confirmation in a 2026-07-28 `InputRequiredResult` / the retry's `inputResponses`
CONFIRM_KEY = "confirm_cost"
FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "confirm": {"type": "boolean", "title": "Run it", "description": "Run the call at this cost."}
    },
    "required": ["confirm"],
}


def estimated_cost(
    settings: Settings, registry: Registry, kind: str, name: str, inputs: dict[str, Any], model: str
) -> float:
    """The most a run of protocol or profile `name` should cost in US dollars on `model` (the
    module docstring says how it is counted); 0 when the model's price is unknown."""
    from reasonkit.engine.sizing import CHARS_PER_TOKEN, sized_max_tokens
    from reasonkit.providers.base import PriceTable

    price = PriceTable.load(settings.llm.prices).lookup(model)
    if price is None:
        return 0.0
    if kind == "profile":
        chain = registry.profiles[name].chain
        protocols = [registry.protocols[e.protocol] for e in chain if e.protocol in registry.protocols]
    else:
        protocols = [registry.protocols[name]]
    pace, input_chars = pace_for(settings), len(json.dumps(inputs, ensure_ascii=False))
    tokens_in = tokens_out = 0
    for proto in protocols:
        calls = protocol_estimate(proto, pace).calls_max
        out = max(sized_max_tokens(s.output, s.max_tokens or settings.llm.max_tokens) for s in proto.steps)
        prompt = max(len(s.prompt) for s in proto.steps)
        tokens_in += calls * ((prompt + input_chars) // CHARS_PER_TOKEN + out)
        tokens_out += calls * out
    return (tokens_in * price.get("input", 0.0) + tokens_out * price.get("output", 0.0)) / 1_000_000


def _can_ask(ctx: ServerRequestContext[Any], modern: bool) -> bool:
    session = ctx.session
    wanted = types.ClientCapabilities(elicitation=types.ElicitationCapability())
    declared = bool(session.check_client_capability(wanted))
    return declared and (modern or bool(session.can_send_request))


def _sent_answer(ctx: ServerRequestContext[Any]) -> dict[str, Any] | None:
    """The confirmation a 2026-07-28 retry carries in `inputResponses` (a plain mapping), if any."""
    responses = (ctx.params or {}).get("inputResponses")
    answer = responses.get(CONFIRM_KEY) if isinstance(responses, dict) else None
    return answer if isinstance(answer, dict) else None


async def confirm_run(ctx: ServerRequestContext[Any], core: ServerCore, run: PreparedRun) -> None:
    """Return when `run` may go ahead; raise `ConfirmationPending` (2026-07-28: ask first) or
    `NotConfirmed` (declined, stored as such; or refused because the client cannot be asked)."""
    settings, result = core.settings, run.result
    limit = settings.server.confirm_above_usd
    if limit is None:
        return
    cost = estimated_cost(settings, core.registry, result.kind, result.name, result.inputs, result.model)
    if cost <= limit:
        return
    over = f"an estimated cost of up to ${cost:.4f}, over this server's confirm_above_usd (${limit:g})"
    message = f"Run the ReasonKit {result.kind} '{result.name}'? It has {over}."
    modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
    if not _can_ask(ctx, modern):
        if settings.server.confirm_unsupported == "refuse":
            raise NotConfirmed(f"not run: the call has {over}, and this client cannot be asked to confirm it")
        return
    if modern:
        answer = _sent_answer(ctx)
        if answer is None:
            params = {"mode": "form", "message": message, "requestedSchema": FORM}
            raise ConfirmationPending(message, {"method": "elicitation/create", "params": params})
        action, content = answer.get("action"), answer.get("content")
    else:
        elicited = await ctx.session.elicit_form(message, FORM, related_request_id=ctx.request_id)
        action, content = elicited.action, elicited.content
    if action == "accept" and isinstance(content, dict) and content.get("confirm") is True:
        logger.info("run {} confirmed by the user ({})", result.run_id, over)
        return
    reason = f"declined: the user did not confirm {over} (answer: {action})"
    await core.service.record_not_run(run, reason)
    raise NotConfirmed(f"not run: {reason}; run {result.run_id} is stored as cancelled")


def input_required(pending: ConfirmationPending) -> types.InputRequiredResult:
    """The 2026-07-28 answer of a call that waits for its user's confirmation."""
    wire = {"resultType": "input_required", "inputRequests": {CONFIRM_KEY: pending.request}}
    return types.InputRequiredResult.model_validate(wire)
