"""Shared helpers for the security, bad-input, lifecycle and load tests: raw JSON-RPC over HTTP
(handshake era, so no session is needed on a stateless server), SSE parsing, ASGI apps with their
lifespan running."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from mcp_types import TextContent, TextResourceContents

LEGACY = "2025-06-18"
MCP_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": LEGACY,
}


def rpc(method: str, params: dict[str, Any] | None = None, id: int | str = 1) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def call(name: str, arguments: dict[str, Any], id: int | str = 1) -> dict[str, Any]:
    return rpc("tools/call", {"name": name, "arguments": arguments}, id)


def answer(resp: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC response in an HTTP response: a JSON body, or the SSE event that carries an id."""
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        return resp.json()
    assert ctype.startswith("text/event-stream"), (resp.status_code, ctype, resp.text[:300])
    found = None
    for line in resp.text.splitlines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            if payload:
                msg = json.loads(payload)
                if "id" in msg and ("result" in msg or "error" in msg):
                    found = msg
    assert found is not None, resp.text[:500]
    return found


@asynccontextmanager
async def asgi_client(
    app: Any, base_url: str = "http://127.0.0.1:9100", client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to `app` in-process, with the app's lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30) as http:
            yield http


def metric(body: str, name_and_labels: str) -> float:
    for line in body.splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.split()[-1])
    return 0.0


async def poll(pred: Callable[[], object], within: float = 10.0, step: float = 0.02) -> None:
    """Wait until `pred()` is truthy (fails after `within` seconds)."""
    with anyio.fail_after(within):
        while True:
            if pred():
                return
            await anyio.sleep(step)


async def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A command's (returncode, text stdout, text stderr), without blocking the event loop."""
    r = await anyio.run_process(cmd, env=env, check=False)
    return subprocess.CompletedProcess(cmd, r.returncode, r.stdout.decode(), r.stderr.decode())


def block_text(block: object) -> str:
    """The text of one content block or resource item a test expects to be text. The SDK types these
    as unions (image, audio, blob...); this narrows them, and fails with the block when it is not."""
    assert isinstance(block, TextContent | TextResourceContents), block
    return block.text
