"""The conformance fixture's tasks tools (SEP-2663 scenarios `tasks-*`), served through ReasonKit's
own tasks path: each task tool is a real `laserlogic` run started by `ToolHandlers.run_tool` (so the
task decision in `ToolCall`, the run store, `TaskHandlers.create/get/cancel` and the cancel scope are
ReasonKit's), on `FixtureProvider`, a provider that lets the tool's arguments decide how the run
goes: sleep `seconds` (slow_compute), fail every step with a provider error (failing_job: a tool
error, `completed` + `isError`) or crash the engine (protocol_error_job: `failed` + `error`).

ReasonKit's tasks never ask for input (no `input_required` task status: a confirmation is asked
before the run starts, server/mcp/confirm.py), so `confirm_delete` and `multi_input` are tasks that
run without asking; the scenario that checks the asking stays in conformance-expected-failures.txt.
`test_tool_with_task` asks its question before the task exists (an `InputRequiredResult`, as
ReasonKit's own confirmation does), then starts the run as a task with the answer in it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext

from reasonkit.errors import ProviderError
from reasonkit.providers.base import LLMRequest, LLMResponse
from reasonkit.providers.fake import FakeProvider
from reasonkit.server.mcp import tasks
from reasonkit.server.mcp.tools import ToolHandlers
from tests.server.lifecycle.conformance_mrtr import _ask, _field, _input_required, _responses

PROTOCOL = "laserlogic"
#: the marker in the run's argument that tells `FixtureProvider` what to do
MARKER = re.compile(r"\[fixture (sleep|fail|crash) ([0-9.]+) (\w+)(?: for=(\w+))?\]")
_LABEL: dict[str, Any] = {"type": "string"}
TASK_TOOLS: dict[str, dict[str, Any]] = {
    "slow_compute": {"type": "object", "properties": {"seconds": {"type": "number"}, "label": _LABEL}},
    "failing_job": {"type": "object", "properties": {}},
    "protocol_error_job": {"type": "object", "properties": {}},
    "confirm_delete": {"type": "object", "properties": {"filename": _LABEL}},
    "multi_input": {"type": "object", "properties": {}},
    "test_tool_with_task": {"type": "object", "properties": {}},
}
#: registered as needing a task (the suite's tasks-required-task-error and tasks-mrtr-composition)
REQUIRED = {"failing_job", "test_tool_with_task"}
SYNC_TOOLS: dict[str, dict[str, Any]] = {
    "greet": {"type": "object", "properties": {"name": _LABEL}, "required": ["name"]},
}
#: every tool this module serves -> its input schema
SCHEMAS = {**SYNC_TOOLS, **TASK_TOOLS}


def task_tools() -> list[types.Tool]:
    """The tasks fixture tools for `tools/list`, with their `execution.taskSupport`."""
    found = [
        types.Tool(name=n, description=f"conformance fixture {n}", input_schema=s)
        for n, s in SYNC_TOOLS.items()
    ]
    for name, schema in TASK_TOOLS.items():
        support = "required" if name in REQUIRED else "optional"
        found.append(
            types.Tool.model_validate(
                {
                    "name": name,
                    "description": f"conformance fixture {name} (runs as a task)",
                    "inputSchema": schema,
                    "execution": {"taskSupport": support},
                }
            )
        )
    return found


class FixtureProvider(FakeProvider):
    """`FakeProvider` that reads `MARKER` in the prompt: sleeps its seconds once per run (the first
    call that sees it), raises `ProviderError` (a step failure) or `RuntimeError` (an engine crash);
    with `for=<name>` every string it answers greets the name (so the run's answer shows it)."""

    def __init__(self) -> None:
        super().__init__(name="fixture")
        self._slept: set[str] = set()

    async def complete(self, request: LLMRequest) -> LLMResponse:
        prompt = " ".join(str(m.get("content", "")) for m in request.messages)
        found = MARKER.search(prompt)
        if found is not None:
            mode, seconds, nonce = found[1], float(found[2]), found[3]
            if mode == "crash":
                raise RuntimeError("protocol_error_job crashes on purpose")
            if mode == "fail":
                await anyio.sleep(seconds)
                raise ProviderError("fixture", "server", "failing_job fails on purpose")
            if nonce not in self._slept:
                self._slept.add(nonce)
                await anyio.sleep(seconds)
            if found[4]:
                return _greeting(await super().complete(request), found[4])
        return await super().complete(request)


def _greeting(response: LLMResponse, name: str) -> LLMResponse:
    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return f"Hello, {name}!" if isinstance(value, str) else value

    parsed = swap(response.parsed)
    return dataclasses.replace(response, parsed=parsed, text=json.dumps(parsed))


async def call_task_tool(
    handlers: ToolHandlers, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> Any:
    """One of `TASK_TOOLS` or `SYNC_TOOLS`: a `laserlogic` run through `ToolHandlers.run_tool`, as a
    task when the request declares the extension (`background`: ReasonKit's rule for a task)."""
    name, args = params.name, dict(params.arguments or {})
    if name == "greet":
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"Hello, {args['name']}!")])
    declared = tasks.declared(ctx)
    if name in REQUIRED and not declared:
        raise tasks.missing_extension()
    greet = ""
    if name == "test_tool_with_task":  # SEP-2322 first (a name), then the run as a task
        answer = _responses(params).get("user_name")
        if answer is None:
            return _input_required({"user_name": _ask("What is your name?", "name")})
        greet = " for=" + (re.sub(r"\W", "", _field(answer, "name")) or "nobody")
    mode, seconds = {"failing_job": ("fail", 1.0), "protocol_error_job": ("crash", 0.0)}.get(
        name, ("sleep", float(args.get("seconds") or 0))
    )
    argument = f"[fixture {mode} {seconds:g} {secrets.token_hex(4)}{greet}] {name} {args.get('label', '')}"
    inputs: dict[str, Any] = {"argument": argument, "background": declared}
    return await handlers.run_tool(ctx, PROTOCOL, "protocol", inputs)
