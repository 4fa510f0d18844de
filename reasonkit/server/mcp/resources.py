"""MCP resources (`reasonkit://protocols/{id}`, `reasonkit://runs/{run_id}`) and prompts (one per
ThinkTool)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from reasonkit.errors import InputError, StoreError
from reasonkit.principal import Principal
from reasonkit.protocol.inputs import coerce_inputs
from reasonkit.server.capacity.run_slots import principal_of
from reasonkit.server.mcp import schemas
from reasonkit.server.mcp.core import ServerCore

PROTOCOL_URI = "reasonkit://protocols/"
RUN_URI = "reasonkit://runs/"


def _not_found(message: str, uri: str) -> MCPError:
    return MCPError(code=types.INVALID_PARAMS, message=f"Resource not found: {message}", data={"uri": uri})


class ResourceHandlers:
    """resources/list, resources/templates/list, resources/read, prompts/list and prompts/get."""

    def __init__(self, core: ServerCore):
        self.core = core

    async def list_resources(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=f"{PROTOCOL_URI}{p.id}",
                    name=p.id,
                    title=f"{p.name} protocol",
                    description=(
                        f"The {p.name} ThinkTool protocol file (TOML): its inputs, steps, prompts and "
                        "confidence rules."
                    ),
                    mime_type="application/toml",
                )
                for p in self.core.protocols.values()
            ]
        )

    async def list_resource_templates(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=PROTOCOL_URI + "{id}",
                    name="protocol",
                    title="ThinkTool protocol",
                    description="A ThinkTool protocol file (TOML) by id.",
                    mime_type="application/toml",
                ),
                types.ResourceTemplate(
                    uri_template=RUN_URI + "{run_id}",
                    name="run",
                    title="ReasonKit run trace",
                    description=(
                        "The full trace of a run (prompts, raw replies, parsed outputs, confidence, usage) "
                        "as JSON."
                    ),
                    mime_type="application/json",
                ),
            ]
        )

    async def read_resource(
        self, ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri.startswith(PROTOCOL_URI):
            return await self._read_protocol(uri, uri[len(PROTOCOL_URI) :])
        if uri.startswith(RUN_URI):
            return await self._read_run(uri, uri[len(RUN_URI) :], principal_of(ctx))
        raise _not_found(uri, uri)

    async def _read_protocol(self, uri: str, protocol_id: str) -> types.ReadResourceResult:
        proto = self.core.protocols.get(protocol_id)
        if proto is None:
            raise _not_found(f"no protocol '{protocol_id}'", uri)
        try:
            text = await anyio.Path(proto.source).read_text(encoding="utf-8")
        except OSError as exc:
            message = f"cannot read the protocol file: {exc.strerror or exc}"
            raise MCPError(code=types.INTERNAL_ERROR, message=message, data={"uri": uri}) from None
        contents = [types.TextResourceContents(uri=uri, mime_type="application/toml", text=text)]
        return types.ReadResourceResult(contents=contents)

    async def _read_run(self, uri: str, run_id: str, viewer: Principal) -> types.ReadResourceResult:
        """A run's trace for a viewer that may see it; another principal's run reads as unknown."""
        try:
            trace = await self.core.service.trace(run_id, viewer)
        except StoreError as exc:
            raise MCPError(code=types.INTERNAL_ERROR, message=str(exc), data={"uri": uri}) from None
        if trace is None:
            raise _not_found(f"no run '{run_id}'", uri)
        text = json.dumps(trace, ensure_ascii=False, indent=2)
        contents = [types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
        return types.ReadResourceResult(contents=contents)

    async def list_prompts(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[schemas.prompt_for(p) for p in self.core.protocols.values()])

    async def get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        proto = self.core.protocols.get(params.name)
        if proto is None:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Unknown prompt: {params.name}",
                data={"prompt": params.name},
            )
        try:
            clean = coerce_inputs(proto.inputs, dict(params.arguments or {}), f"prompt '{proto.id}'")
        except InputError as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None
        text = schemas.prompt_text(proto, {k: str(v) for k, v in clean.items()})
        message = types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
        return types.GetPromptResult(description=f"Ask for a {proto.name} analysis", messages=[message])
