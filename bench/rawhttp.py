"""A minimal asyncio HTTP/1.1 client for the load generator: persistent connections, one request
at a time per connection, Content-Length and chunked bodies. No features beyond that.

Why not httpx: under 200 concurrent requests httpx's connection pool spends milliseconds of CPU per
request (measured in section 4: 200 concurrent POSTs to the fake provider alone took about a
second), so the load generator, not the server, would set the numbers. This client costs tens of
microseconds per request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def request(self, head: bytes, body: bytes) -> tuple[Response, bool]:
        self.writer.write(head + body)
        r = self.reader
        status_line = await r.readline()
        if not status_line:
            raise ConnectionError("connection closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while True:
            line = await r.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            data = await r.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await r.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await r.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(await r.readexactly(size))
                await r.readexactly(2)
            data = b"".join(parts)
        else:  # body until close
            data = await r.read()
            return Response(status, headers, data), False
        reusable = headers.get("connection", "").lower() != "close"
        return Response(status, headers, data), reusable

    def close(self) -> None:
        self.writer.close()


class RawClient:
    """`await client.post(path, body, headers)` against one host:port; connections are reused."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._idle: list[_Conn] = []
        self._all: set[_Conn] = set()

    async def _acquire(self) -> _Conn:
        if self._idle:
            return self._idle.pop()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        conn = _Conn(reader, writer)
        self._all.add(conn)
        return conn

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Response:
        head = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}", f"content-length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw_head = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        conn = await self._acquire()
        try:
            resp, reusable = await conn.request(raw_head, body)
        except BaseException:
            conn.close()
            self._all.discard(conn)
            raise
        if reusable:
            self._idle.append(conn)
        else:
            conn.close()
            self._all.discard(conn)
        return resp

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Response:
        return await self.request("POST", path, body, headers)

    async def get(self, path: str) -> Response:
        return await self.request("GET", path)

    async def aclose(self) -> None:
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
