"""Test helpers: route fake-LLM replies by prompt, and an in-process provider scripted per test (for
replies and errors the HTTP fakes cannot produce yet, such as a context-window overflow)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from reasonkit.errors import ProviderError
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider, Usage
from tests.fakes.fake_llm import Reply, schema_filler


def first_user_text(req) -> str:
    msg = next(m for m in req.body["messages"] if m["role"] == "user")
    content = msg["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def by_prompt(table: dict[str, dict | list[Reply]], delay: float = 0.0):
    """A fake-LLM default handler routed by the step's prompt (the first user message, so a repair
    call of a step is routed like the step): a dict value is the JSON reply; a list of Replies is
    consumed in order (main call, then repair)."""

    def handler(req):
        text = first_user_text(req)
        for key, obj in table.items():
            if text.startswith(key):
                if isinstance(obj, list):
                    return obj.pop(0)
                return Reply(json=obj, delay=delay)
        return dataclasses.replace(schema_filler(req), delay=delay)

    return handler


# What a scripted provider answers: reply text, (text, stop_reason), a dict (sent as JSON text), a
# list of those (consumed in order: main call, then repair), or a ProviderError to raise.
Answer = str | tuple[str, str] | dict[str, Any] | ProviderError


class ScriptedProvider(Provider):
    """A real Provider whose replies come from a table keyed by prompt prefix (the first user message);
    unmatched prompts get {"answer"/"note"/...: "x", "confidence": 0.8} filled from the schema."""

    name = "scripted"
    model = "scripted-1"

    def __init__(self, table: dict[str, Answer | list[Answer]] | None = None):
        self.table = table or {}
        self.requests: list[LLMRequest] = []

    def _answer(self, request: LLMRequest) -> Answer:
        prompt = request.messages[0]["content"]
        for key, answer in self.table.items():
            if prompt.startswith(key):
                if isinstance(answer, list):
                    return answer.pop(0) if len(answer) > 1 else answer[0]
                return answer
        return fill(request.schema or {})

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        answer = self._answer(request)
        if isinstance(answer, ProviderError):
            raise answer
        stop = "end"
        if isinstance(answer, tuple):
            answer, stop = answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return LLMResponse(
            text=text,
            parsed=None,
            stop_reason=stop,  # type: ignore[arg-type]
            usage=Usage(input=10, output=5),
            provider=self.name,
            model=self.model,
        )


def fill(schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in (schema.get("properties") or {}).items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if name == "confidence":
            out[name] = 0.8
        elif kind == "array":
            count = max(3, spec.get("minItems", 3))
            items = spec.get("items") if isinstance(spec.get("items"), dict) else {}
            if items.get("type") == "object":
                out[name] = [numbered(fill(items), i) for i in range(1, count + 1)]
            else:
                out[name] = [f"{name} {i}" for i in range(1, count + 1)]
        elif kind in ("number", "integer"):
            out[name] = 1
        elif isinstance(spec, dict) and "enum" in spec:
            out[name] = spec["enum"][0]
        elif kind == "boolean":
            out[name] = True
        elif kind == "object":
            out[name] = fill(spec)
        else:
            out[name] = f"{name} text"
    return out


def numbered(obj: dict[str, Any], i: int) -> dict[str, Any]:
    """Make filled list items differ (identical items would be removed as repeats)."""
    key = next((k for k, v in obj.items() if isinstance(v, str)), None)
    if key:
        obj[key] = f"{obj[key]} {i}"
    return obj


def step(result, step_id: str):
    return next(s for s in result.all_steps() if s.step_id == step_id)


MakeScripted = Callable[..., Any]
