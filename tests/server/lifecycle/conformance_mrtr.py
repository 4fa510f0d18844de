"""The conformance fixture's 2026-07-28 tools (conformance_fixture.py serves them): the
input-required (multi-round-trip) tools and prompt, and the stateless-protocol diagnostic tools,
answering as the suite's reference server does. `requestState` reaches them as the plaintext they
minted: the SDK's `RequestStateBoundary` (installed by the fixture) seals it on the way out and
rejects a tampered or replayed one on the way in."""

from __future__ import annotations

import json
import secrets
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

EMPTY: dict[str, Any] = {"type": "object", "properties": {}}
MRTR_TOOLS: dict[str, dict[str, Any]] = {
    name: EMPTY
    for name in (
        "test_missing_capability",
        "test_input_required_result_elicitation",
        "test_input_required_result_sampling",
        "test_input_required_result_list_roots",
        "test_input_required_result_request_state",
        "test_input_required_result_multiple_inputs",
        "test_input_required_result_multi_round",
        "test_input_required_result_tampered_state",
        "test_input_required_result_capabilities",
        "test_streaming_elicitation",
        "test_logging_tool",
    )
}
MRTR_PROMPTS: dict[str, list[str]] = {"test_input_required_result_prompt": []}


def _ask(message: str, field: str, kind: str = "string") -> dict[str, Any]:
    schema = {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}
    return {"method": "elicitation/create", "params": {"message": message, "requestedSchema": schema}}


def _sample(text: str, max_tokens: int) -> dict[str, Any]:
    message = {"role": "user", "content": {"type": "text", "text": text}}
    return {"method": "sampling/createMessage", "params": {"messages": [message], "maxTokens": max_tokens}}


ROOTS = {"method": "roots/list", "params": {}}


def _input_required(
    requests: dict[str, Any], state: dict[str, Any] | None = None
) -> types.InputRequiredResult:
    wire: dict[str, Any] = {"resultType": "input_required", "inputRequests": requests}
    if state is not None:
        wire["requestState"] = json.dumps({**state, "nonce": secrets.token_hex(8)})
    return types.InputRequiredResult.model_validate(wire)


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


def _responses(params: Any) -> dict[str, dict[str, Any]]:
    raw = getattr(params, "input_responses", None) or {}
    return {
        key: value.model_dump(by_alias=True, exclude_none=True)
        if hasattr(value, "model_dump")
        else dict(value)
        for key, value in raw.items()
    }


def _state(params: Any) -> dict[str, Any]:
    raw = getattr(params, "request_state", None)
    try:
        state = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def _field(response: dict[str, Any] | None, name: str) -> str:
    content = (response or {}).get("content")
    return str(content.get(name)) if isinstance(content, dict) and name in content else ""


def _declared(ctx: ServerRequestContext[Any], capability: types.ClientCapabilities) -> bool:
    return bool(ctx.session.check_client_capability(capability))


def mrtr_call(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
    name, got, state = params.name, _responses(params), _state(params)
    sampling = types.ClientCapabilities(sampling=types.SamplingCapability())
    if name == "test_missing_capability":
        if not _declared(ctx, sampling):
            raise MCPError(
                code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
                message="MissingRequiredClientCapabilityError",
                data={"requiredCapabilities": {"sampling": {}}},
            )
        return _text("Success")
    if name == "test_input_required_result_elicitation":
        if "user_name" in got:
            return _text(f"Hello, {_field(got['user_name'], 'name')}!")
        return _input_required({"user_name": _ask("What is your name?", "name")})
    if name == "test_input_required_result_sampling":
        if "sample_request" in got:
            content = got["sample_request"].get("content") or {}
            return _text(f"Sampling result: {content.get('text', 'no response')}")
        return _input_required({"sample_request": _sample("What is the capital of France?", 100)})
    if name == "test_input_required_result_list_roots":
        if "roots_request" in got:
            return _text(f"Found {len(got['roots_request'].get('roots') or [])} root(s)")
        return _input_required({"roots_request": ROOTS})
    if name in ("test_input_required_result_request_state", "test_input_required_result_tampered_state"):
        kind = "request-state" if name.endswith("request_state") else "tamper-test"
        if state.get("kind") == kind and "confirm" in got:
            return _text("state-ok: requestState validated" if kind == "request-state" else "integrity-ok")
        return _input_required({"confirm": _ask("Please confirm", "ok", "boolean")}, {"kind": kind})
    if name == "test_input_required_result_multiple_inputs":
        return _multiple_inputs(got, state)
    if name == "test_input_required_result_multi_round":
        return _multi_round(got, state)
    if name == "test_input_required_result_capabilities":
        return _capabilities(ctx, got, sampling)
    return _text("Streaming complete" if name == "test_streaming_elicitation" else "Logging evaluated")


def _capabilities(
    ctx: ServerRequestContext[Any], got: dict[str, Any], sampling: types.ClientCapabilities
) -> Any:
    """Input requests only for the capabilities the request declared."""
    if got:
        return _text(f"capabilities-ok: received {','.join(got)}")
    requests: dict[str, Any] = {}
    if _declared(ctx, types.ClientCapabilities(elicitation=types.ElicitationCapability())):
        requests["elicit_input"] = _ask("Elicitation input", "value")
    if _declared(ctx, sampling):
        requests["sample_input"] = _sample("Sample request", 50)
    if not requests:
        return _text("No supported capabilities declared")
    return _input_required(requests, {"kind": "capabilities-test"})


def mrtr_prompt(params: types.GetPromptRequestParams) -> Any:
    got = _responses(params)
    if "user_context" in got:
        text = f"Prompt with context: {_field(got['user_context'], 'context')}"
        wire = {"messages": [{"role": "user", "content": {"type": "text", "text": text}}]}
        return types.GetPromptResult.model_validate(wire)
    return _input_required({"user_context": _ask("What context should the prompt use?", "context")})


def _multiple_inputs(got: dict[str, Any], state: dict[str, Any]) -> Any:
    wanted = ("user_name", "greeting", "client_roots")
    if state.get("kind") == "multiple-inputs" and all(k in got for k in wanted):
        greeting = (got["greeting"].get("content") or {}).get("text", "Hello there!")
        roots = len(got["client_roots"].get("roots") or [])
        return _text(f"Name: {_field(got['user_name'], 'name')}; Greeting: {greeting}; Roots: {roots}")
    requests = {
        "user_name": _ask("What is your name?", "name"),
        "greeting": _sample("Generate a greeting", 50),
        "client_roots": ROOTS,
    }
    return _input_required(requests, {"kind": "multiple-inputs"})


def _multi_round(got: dict[str, Any], state: dict[str, Any]) -> Any:
    if state.get("round") == 1 and "step1" in got:
        step2 = {"step2": _ask("Step 2: What is your favorite color?", "color")}
        return _input_required(step2, {"round": 2, "name": _field(got["step1"], "name")})
    if state.get("round") == 2 and "step2" in got:
        return _text(
            f"Multi-round complete for {state.get('name')} who likes {_field(got['step2'], 'color')}"
        )
    return _input_required({"step1": _ask("Step 1: What is your name?", "name")}, {"round": 1})
