"""A test-only MCP server for the conformance suite's scenarios that call the suite's fixture tools,
resources and prompts (`test_simple_text`, `test://static-text`, `test_prompt_with_arguments`, the
input-required tools, ...). Never shipped: ReasonKit's own tools are data-driven ThinkTools, and the
suite cannot know them.

The fixture is ReasonKit's server with fixtures added, not a second server: a real
`ReasonKitServer` (settings, run store, admission, security policy) whose SDK server is
`FixtureServer`, ReasonKit's `_Server` subclass with the suite's handlers in front of ReasonKit's
own; any name the fixture does not know goes to ReasonKit's handlers (so an unknown tool is
ReasonKit's error path), and it is served by `serve_http` (our HTTP gate, session manager,
uvicorn setup, drain). So every scenario run against it exercises our transport and error paths.

What the fixtures answer follows the suite's reference server (examples/servers/typescript/
everything-server.ts in modelcontextprotocol/conformance); the 2026-07-28 input-required tools are
in conformance_mrtr.py, the tasks tools (ReasonKit runs through its tasks code) in
conformance_tasks.py.

    python -m tests.server.lifecycle.conformance_fixture --port 8123 [--stateful]
"""

from __future__ import annotations

import argparse
import base64
import json
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity

from reasonkit.config import load_settings
from reasonkit.server.mcp import rendering, tasks
from reasonkit.server.mcp.app import INSTRUCTIONS, ReasonKitServer, _Server, build_server
from tests.server.lifecycle.conformance_mrtr import MRTR_PROMPTS, MRTR_TOOLS, mrtr_call, mrtr_prompt
from tests.server.lifecycle.conformance_tasks import SCHEMAS, FixtureProvider, call_task_tool, task_tools

# A 1x1 PNG and a short WAV header, as the reference server sends.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WAV = base64.b64encode(
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00D\xac\x00\x00"
    b"\x88X\x01\x00\x02\x00\x10\x00data\x00\x00\x00\x00"
).decode()
EMPTY: dict[str, Any] = {"type": "object", "properties": {}}


def _schema(**props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


#: tool name -> input schema (the tools of the suite's reference server, and its SEP-2243 header tool)
TOOLS: dict[str, dict[str, Any]] = {
    "test_simple_text": EMPTY,
    "test_image_content": EMPTY,
    "test_audio_content": EMPTY,
    "test_embedded_resource": EMPTY,
    "test_multiple_content_types": EMPTY,
    "test_tool_with_logging": EMPTY,
    "test_tool_with_progress": EMPTY,
    "test_error_handling": EMPTY,
    "test_sampling": _schema(prompt={"type": "string"}),
    "test_elicitation": _schema(message={"type": "string"}),
    "test_elicitation_sep1034_defaults": EMPTY,
    "test_elicitation_sep1330_enums": EMPTY,
    # the suite's list-changed triggers: ReasonKit's own reload notification path
    "test_trigger_tool_change": EMPTY,
    "test_trigger_prompt_change": EMPTY,
    "test_custom_header": _schema(region={"type": "string", "x-mcp-header": "Region"}),
    "json_schema_2020_12_tool": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": False,
    },
    **MRTR_TOOLS,
}

DEFAULTS_FORM = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}
_CHOICES = [{"const": f"value{i}", "title": t} for i, t in enumerate(("First", "Second", "Third"), 1)]
ENUMS_FORM = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [{**c, "title": f"{c['title']} Option"} for c in _CHOICES],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {"anyOf": [{**c, "title": f"{c['title']} Choice"} for c in _CHOICES]},
        },
    },
    "required": [],
}


def _result(*content: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult.model_validate({"content": list(content)})


def _text(text: str) -> types.CallToolResult:
    return _result({"type": "text", "text": text})


STATIC: dict[str, types.CallToolResult] = {
    "test_simple_text": _text("This is a simple text response for testing."),
    "test_image_content": _result({"type": "image", "data": PNG, "mimeType": "image/png"}),
    "test_audio_content": _result({"type": "audio", "data": WAV, "mimeType": "audio/wav"}),
    "test_embedded_resource": _result(
        {
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content.",
            },
        }
    ),
    "test_multiple_content_types": _result(
        {"type": "text", "text": "Multiple content types test:"},
        {"type": "image", "data": PNG, "mimeType": "image/png"},
        {
            "type": "resource",
            "resource": {
                "uri": "test://mixed-content-resource",
                "mimeType": "application/json",
                "text": json.dumps({"test": "data", "value": 123}),
            },
        },
    ),
    # the error path of a ReasonKit tool: a result with isError
    "test_error_handling": rendering.error_result("This tool intentionally returns an error for testing"),
}

RESOURCES = {
    "test://static-text": ("text/plain", {"text": "This is the content of the static text resource."}),
    "test://static-binary": ("image/png", {"blob": PNG}),
    "test://watched-resource": ("text/plain", {"text": "Watched resource content"}),
}
TEMPLATE = "test://template/{id}/data"

PROMPTS: dict[str, list[str]] = {
    "test_simple_prompt": [],
    "test_prompt_with_arguments": ["arg1", "arg2"],
    "test_prompt_with_embedded_resource": ["resourceUri"],
    "test_prompt_with_image": [],
    **MRTR_PROMPTS,
}


class Fixtures:
    """The suite's fixture handlers in front of a ReasonKit server's own."""

    def __init__(self, core: ReasonKitServer):
        self.core = core
        self.tools, self.resources = core.tool_handlers, core.resource_handlers

    async def list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        own = await self.tools.list_tools(ctx, params)
        fixtures = [
            types.Tool(name=n, description=f"conformance fixture {n}", input_schema=s)
            for n, s in TOOLS.items()
        ]
        return types.ListToolsResult(tools=[*own.tools, *fixtures, *task_tools()])

    def input_schema(self, name: str) -> dict[str, Any] | None:
        return TOOLS.get(name) or SCHEMAS.get(name) or self.core._input_schema(name)

    async def call_tool(self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        name, args = params.name, dict(params.arguments or {})
        if name in STATIC:
            return STATIC[name]
        if name in MRTR_TOOLS:
            return mrtr_call(ctx, params)
        if name in SCHEMAS:
            return await call_task_tool(self.tools, ctx, params)
        session = ctx.session
        if name == "test_tool_with_logging":
            for text in ("Tool execution started", "Tool processing data", "Tool execution completed"):
                note = types.LoggingMessageNotificationParams(level="info", data=text)
                await session.send_notification(types.LoggingMessageNotification(params=note))
                await anyio.sleep(0.05)
            return _text("Tool with logging executed successfully")
        if name == "test_tool_with_progress":
            for step in (0, 50, 100):
                await session.report_progress(step, 100, f"Completed step {step} of 100")
                await anyio.sleep(0.05)
            token = (ctx.meta or {}).get("progressToken")
            return _text(str(token))
        if name == "test_sampling":
            message = types.SamplingMessage(
                role="user", content=types.TextContent(type="text", text=args["prompt"])
            )
            request = types.CreateMessageRequest(
                params=types.CreateMessageRequestParams(messages=[message], max_tokens=100)
            )
            sampled = await session.send_request(request, types.CreateMessageResult)
            reply = sampled.content
            return _text(f"LLM response: {getattr(reply, 'text', 'No response')}")
        forms = {"test_elicitation": None, "test_elicitation_sep1034_defaults": DEFAULTS_FORM}
        forms["test_elicitation_sep1330_enums"] = ENUMS_FORM
        if name in forms:
            form = forms[name] or _schema(response={"type": "string", "description": "User's response"})
            answer = await session.elicit_form(args.get("message") or "Please fill in the form", form)
            return _text(
                f"Elicitation completed: action={answer.action}, content={json.dumps(answer.content or {})}"
            )
        if name in ("test_trigger_tool_change", "test_trigger_prompt_change"):
            await self.core.reloader.notify_changed()
            return _text("Mutation triggered")
        if name == "test_custom_header":
            return _text(f"region={args.get('region')}")
        if name == "json_schema_2020_12_tool":
            return _text(f"JSON Schema 2020-12 tool called with: {json.dumps(args)}")
        return await self.tools.call_tool(ctx, params)

    async def list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        own = await self.resources.list_resources(ctx, params)
        fixtures = [
            types.Resource(uri=u, name=u.split("//")[1], mime_type=m) for u, (m, _) in RESOURCES.items()
        ]
        return types.ListResourcesResult(resources=[*own.resources, *fixtures])

    async def list_resource_templates(self, ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        own = await self.resources.list_resource_templates(ctx, params)
        mine = types.ResourceTemplate(uri_template=TEMPLATE, name="template", mime_type="application/json")
        return types.ListResourceTemplatesResult(resource_templates=[*own.resource_templates, mine])

    async def read_resource(
        self, ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri in RESOURCES:
            mime, body = RESOURCES[uri]
            return types.ReadResourceResult.model_validate(
                {"contents": [{"uri": uri, "mimeType": mime, **body}]}
            )
        head, _, tail = uri.partition("test://template/")
        if not head and tail.endswith("/data"):
            ident = tail.removesuffix("/data")
            text = json.dumps({"id": ident, "templateTest": True, "data": f"Data for ID: {ident}"})
            content = {"uri": uri, "mimeType": "application/json", "text": text}
            return types.ReadResourceResult.model_validate({"contents": [content]})
        return await self.resources.read_resource(ctx, params)  # ReasonKit's not-found path

    async def list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        own = await self.resources.list_prompts(ctx, params)
        fixtures = [
            types.Prompt(
                name=n,
                description=f"conformance fixture {n}",
                arguments=[types.PromptArgument(name=a, required=True) for a in args],
            )
            for n, args in PROMPTS.items()
        ]
        return types.ListPromptsResult(prompts=[*own.prompts, *fixtures])

    async def get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> Any:
        args = dict(params.arguments or {})
        messages: list[dict[str, Any]]
        if params.name in MRTR_PROMPTS:
            return mrtr_prompt(params)
        if params.name == "test_simple_prompt":
            messages = [{"type": "text", "text": "This is a simple prompt for testing."}]
        elif params.name == "test_prompt_with_arguments":
            text = f"Prompt with arguments: arg1='{args.get('arg1')}', arg2='{args.get('arg2')}'"
            messages = [{"type": "text", "text": text}]
        elif params.name == "test_prompt_with_embedded_resource":
            embedded = {"uri": args.get("resourceUri"), "mimeType": "text/plain", "text": "Embedded content."}
            messages = [{"type": "resource", "resource": embedded}, {"type": "text", "text": "Process it."}]
        elif params.name == "test_prompt_with_image":
            messages = [
                {"type": "image", "data": PNG, "mimeType": "image/png"},
                {"type": "text", "text": "Look."},
            ]
        else:
            return await self.resources.get_prompt(ctx, params)  # ReasonKit's unknown-prompt error
        wire = [{"role": "user", "content": m} for m in messages]
        return types.GetPromptResult.model_validate({"messages": wire})

    async def complete(self, ctx: Any, params: Any) -> types.CompleteResult:
        return types.CompleteResult(completion=types.Completion(values=[], total=0, has_more=False))

    async def set_level(self, ctx: Any, params: Any) -> types.EmptyResult:
        return types.EmptyResult()

    async def subscribe(self, ctx: Any, params: Any) -> types.EmptyResult:
        return types.EmptyResult()


def fixture_server(core: ReasonKitServer) -> _Server:
    """ReasonKit's SDK server class, with the fixtures in front of ReasonKit's handlers; the
    request-state boundary seals and checks the input-required tools' `requestState`."""
    fx = Fixtures(core)
    server = _Server(
        "reasonkit-conformance-fixture",
        version="0",
        instructions=INSTRUCTIONS,
        lifespan=core._lifespan,
        get_tool_input_schema=fx.input_schema,
        on_list_tools=fx.list_tools,
        on_list_resources=fx.list_resources,
        on_list_resource_templates=fx.list_resource_templates,
        on_read_resource=fx.read_resource,
        on_subscribe_resource=fx.subscribe,
        on_unsubscribe_resource=fx.subscribe,
        on_list_prompts=fx.list_prompts,
        on_get_prompt=fx.get_prompt,
        on_completion=fx.complete,
        on_set_logging_level=fx.set_level,
        on_subscriptions_listen=core.listen,
    )
    # as the product's (app.py): tools/call may answer a CreateTaskResult; the tasks methods are ours
    server.add_request_handler("tools/call", types.CallToolRequestParams, fx.call_tool)
    tasks.serve(server, core.tool_handlers.tasks)
    server.middleware.append(
        RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience="fixture")
    )
    server.middleware.append(core._metrics_middleware)
    return server


def main(argv: list[str] | None = None) -> None:
    from reasonkit.server.http.security import SecurityPolicy
    from reasonkit.server.lifecycle.serve import serve_http

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--stateful", action="store_true", help="stateful HTTP sessions (the 2025 back channel)"
    )
    opts = parser.parse_args(argv)
    overrides = {
        "server.port": opts.port,
        "server.stateless_http": not opts.stateful,
    }
    settings = load_settings(overrides=overrides)
    core = build_server(settings, provider_factory=lambda _settings: FixtureProvider())
    core.server = fixture_server(core)
    core.security = SecurityPolicy.from_settings(settings, settings.server.host)
    serve_http(core, settings.server.host, opts.port)


if __name__ == "__main__":
    main()
