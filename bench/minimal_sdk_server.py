"""The floor of a tool call on our own stack: a minimal server on the same `mcp` SDK (its low-level
`Server`, one tool that echoes a fixed structured result, stateless streamable HTTP under uvicorn,
logging quiet: no access log, warnings only). `rk serve-mcp`'s per-call CPU is compared with this
(bench/overhead_bench.py); whatever ReasonKit adds above it is ours.

    python -m bench.minimal_sdk_server --port N
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

RESULT = {"answer": "Keep the Python service; profile the database calls first.", "confidence": 0.8}
SCHEMA = {
    "type": "object",
    "required": ["query"],
    "properties": {"query": {"type": "string"}, "context": {"type": "string"}},
}


def build_app() -> Any:
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Route

    tool = types.Tool(name="bench_one", description="Echo a fixed answer.", input_schema=SCHEMA)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=RESULT["answer"])],
            structured_content={**RESULT, "complete": True},
        )

    server: Server[Any] = Server(
        "minimal", version="1", get_tool_input_schema=lambda name: SCHEMA, on_list_tools=list_tools,
        on_call_tool=call_tool,
    )  # fmt: skip
    manager = StreamableHTTPSessionManager(app=server, stateless=True)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    routes = [
        Route("/mcp", endpoint=StreamableHTTPASGIApp(manager)),
        Route("/health/ready", endpoint=_ready, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _ready(request: Any) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"status": "ready"})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(
        build_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False, ws="none",
        server_header=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
