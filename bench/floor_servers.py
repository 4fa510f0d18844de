"""The floors of our own stack, as servers the floors bench (bench/floors_bench.py) starts:

    python -m bench.floor_servers echo --port N            bare uvicorn + starlette, a JSON echo
    python -m bench.floor_servers sdk --port N [--quiet]   the same `mcp` SDK as `rk serve-mcp`, the
                                                           low-level `Server` with one tool (`echo`),
                                                           stateless streamable HTTP at /mcp

`--quiet` sets uvicorn's and the SDK's logging to warnings, without the access log (as `rk serve-mcp`
logs); without it both log as they do by default (uvicorn's access line per request, the SDK's
INFO lines). A call to either costs what any server on this stack costs; ours should stay close."""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def echo_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"echo": await request.json()})

    return Starlette(routes=[Route("/mcp", echo, methods=["POST"]), Route("/ready", _ready)])


async def _ready(request: Any) -> Any:
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("ok")


def sdk_app() -> Any:
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.routing import Route

    tool = types.Tool(
        name="echo",
        description="Echo the query.",
        input_schema={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    )

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text = str((params.arguments or {}).get("query", ""))
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    server: Server[Any] = Server("floor", on_list_tools=list_tools, on_call_tool=call_tool)
    manager = StreamableHTTPSessionManager(
        app=server,
        stateless=True,
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with manager.run():
            yield

    routes = [Route("/mcp", endpoint=StreamableHTTPASGIApp(manager)), Route("/ready", _ready)]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.floor_servers", description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=("echo", "sdk"))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--quiet", action="store_true", help="warnings only, no access log")
    args = ap.parse_args(argv)
    import uvicorn

    if not args.quiet:
        logging.basicConfig(level=logging.INFO)
    app = echo_app() if args.kind == "echo" else sdk_app()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning" if args.quiet else "info",
        access_log=not args.quiet,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
