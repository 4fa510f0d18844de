"""Provider `sampling`: the MCP client's own model, through `sampling/createMessage`.

Opt-in (`[features] sampling = true` or `LLM_DEFAULT_PROVIDER=sampling`) and only usable when the
client declared the sampling capability on a connection that can carry server-to-client requests:
handshake-era (2025) stdio and stateful HTTP sessions. The 2026-07-28 protocol deprecates sampling
and forbids server-initiated requests; stateless HTTP has no back channel. Otherwise the server falls
back to the configured provider or reports what to configure (`choose_provider`).

The schema goes into the system prompt and the reply is plain text; the engine's normal path
extracts and validates the JSON (with its one repair call), exactly as for `json_text` providers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from reasonkit.errors import ProviderError
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider, StopReason, Usage

SAMPLING = "sampling"

SCHEMA_INSTRUCTION = (
    "Reply with exactly one JSON object and nothing else (no prose, no code fences). "
    "It must be valid against this JSON schema:\n<schema>\n{schema}\n</schema>"
)


class SamplingProvider(Provider):
    """Calls the connected MCP client's model for one tool call (the request it belongs to)."""

    def __init__(
        self, session: Any, related_request_id: types.RequestId | None, model_hint: str | None = None
    ):
        self.session = session
        self.related_request_id = related_request_id
        self.name = SAMPLING
        self.model = "client"
        self.model_hint = model_hint

    async def complete(self, request: LLMRequest) -> LLMResponse:
        from mcp.shared.exceptions import MCPError, NoBackChannelError
        from mcp.shared.message import ServerMessageMetadata

        system = request.system or ""
        if request.schema is not None:
            system = (system + "\n\n" if system else "") + SCHEMA_INSTRUCTION.format(
                schema=json.dumps(request.schema, ensure_ascii=False)
            )
        messages = [
            types.SamplingMessage(
                role="assistant" if m.get("role") == "assistant" else "user",
                content=types.TextContent(type="text", text=m.get("content", "")),
            )
            for m in request.messages
        ]
        prefs = (
            types.ModelPreferences(hints=[types.ModelHint(name=self.model_hint)]) if self.model_hint else None
        )
        params = types.CreateMessageRequestParams(
            messages=messages,
            system_prompt=system or None,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            model_preferences=prefs,
            include_context="none",
        )
        t0 = time.monotonic()
        try:
            # `ServerSession.create_message` is marked deprecated (SEP-2577) and warns at runtime; the
            # typed request below is the same wire message without the warning.
            result = await self.session.send_request(
                types.CreateMessageRequest(params=params),
                types.CreateMessageResult,
                metadata=ServerMessageMetadata(related_request_id=self.related_request_id),
            )
        except NoBackChannelError:
            raise ProviderError(
                SAMPLING,
                "config",
                "this connection cannot carry sampling requests (stateless HTTP or the 2026-07-28 protocol)",
            ) from None
        except MCPError as exc:
            raise ProviderError(
                SAMPLING, "bad_request", f"the MCP client declined the sampling request: {exc.error.message}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - a broken peer reply is a provider error
            raise ProviderError(
                SAMPLING, "bad_response", f"sampling failed: {type(exc).__name__}: {exc}"[:300]
            ) from None
        content = result.content
        text = content.text if isinstance(content, types.TextContent) else ""
        if not text:
            raise ProviderError(
                SAMPLING, "bad_response", f"the client's model returned no text ({type(content).__name__})"
            )
        stop: StopReason = "max_tokens" if result.stop_reason == "maxTokens" else "end"
        return LLMResponse(
            text=text,
            parsed=None,
            stop_reason=stop,
            usage=Usage(),
            provider=SAMPLING,
            model=result.model or "client",
            cost_usd=0.0,
            price_known=False,
            latency_ms=(time.monotonic() - t0) * 1000,
            attempts=1,
            structured="json_text",
        )


@dataclass
class ProviderChoice:
    provider: Provider | None
    error: str | None = None


def sampling_wanted(settings: Any) -> bool:
    return bool(settings.features.sampling or settings.llm.default_provider == SAMPLING)


def client_can_sample(session: Any) -> bool:
    """The client declared `sampling` and this request's channel can carry a server request."""
    caps = getattr(session, "client_capabilities", None)
    return (
        caps is not None and caps.sampling is not None and bool(getattr(session, "can_send_request", False))
    )


def sampling_unavailable_reason(session: Any) -> str:
    caps = getattr(session, "client_capabilities", None)
    if caps is None or caps.sampling is None:
        return "the MCP client did not declare the sampling capability"
    if getattr(session, "protocol_version", "") >= "2026":
        return "the 2026-07-28 protocol does not allow server-to-client sampling requests"
    return "this connection cannot carry server-to-client requests (stateless HTTP)"
