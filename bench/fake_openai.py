"""A lean fake OpenAI-compatible server for the benchmarks: `POST /v1/chat/completions` answers a
canned chat completion after a fixed latency, nothing else.

It runs as its own process (`python -m bench.fake_openai`, started by `bench.procs.FakeOpenAI`), so
its CPU time never competes for the measured client's interpreter lock, and it is a bare
`asyncio.Protocol` (no ASGI framework, no JSON parsing of the request), so its own cost per request
is a few tens of microseconds. `InThreadServer` runs the same server on an event loop in a thread of
the calling process, as test doubles usually run: section 1 measures what that costs the client.

Control endpoints (JSON bodies):
    POST /__bench__/config  {"latency": 0.05, "fail_every": 10, "content": "...", "model": "..."}
                            (only the keys given change; fail_every 0: never fail)
    POST /__bench__/reset   zero the counters
    GET  /__bench__/stats   {"requests": n, "failed": n, "max_in_flight": n, "in_flight": n}

`fail_every N` answers HTTP 500 (OpenAI error format) to every Nth chat-completions request, counted
from the last reset. On start the process prints `PORT <n>` on stdout and serves until stdin closes
or it is signalled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
from typing import Any

DEFAULT_CONTENT = json.dumps(
    {"answer": "Keep the Python service; profile the database calls first.", "confidence": 0.8}
)


class State:
    def __init__(self, latency: float, fail_every: int, content: str, model: str) -> None:
        self.latency = latency
        self.fail_every = fail_every
        self.model = model
        self.set_content(content)
        self.reset()

    def set_content(self, content: str) -> None:
        self.content = content
        # Everything but the id and the timestamp is fixed: build the two halves once.
        usage = {"prompt_tokens": 1800, "completion_tokens": 600, "total_tokens": 2400}
        self._head = b'{"id":"chatcmpl-bench'
        tail = {
            "object": "chat.completion",
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
            "system_fingerprint": "fp_bench",
        }
        self._tail = json.dumps(tail, separators=(",", ":")).encode()[1:]  # without the opening brace

    def reset(self) -> None:
        self.requests = 0
        self.failed = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def completion(self) -> bytes:
        return self._head + f'{self.requests}","created":{int(time.time())},'.encode() + self._tail

    def stream(self) -> bytes:
        """The same reply as server-sent events (`stream: true`, which the openai provider sends to a
        server on this machine): one content chunk, a last chunk with the finish reason and usage."""
        base = {"id": f"chatcmpl-bench{self.requests}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self.model}  # fmt: skip
        first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": self.content},
                                      "finish_reason": None}]}  # fmt: skip
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1800, "completion_tokens": 600, "total_tokens": 2400}}  # fmt: skip
        events = [json.dumps(first), json.dumps(last), "[DONE]"]
        return "".join(f"data: {e}\n\n" for e in events).encode()


ERROR_BODY = json.dumps(
    {"error": {"message": "bench: injected fault", "type": "server_error", "param": None, "code": None}}
).encode()


def _response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    reason = {200: b"OK", 404: b"Not Found", 500: b"Internal Server Error"}.get(status, b"OK")
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\nx-request-id: bench\r\n\r\n"
        % (status, reason, content_type, len(body))
        + body
    )


class Conn(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            method, path = head.split(" ", 2)[:2]
            self.handle(method, path, body)

    def send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(payload)

    def handle(self, method: str, path: str, body: bytes) -> None:
        st = self.state
        if path.endswith("/chat/completions") and method == "POST":
            st.requests += 1
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
            fail = st.fail_every > 0 and st.requests % st.fail_every == 0
            if fail:
                st.failed += 1
            if fail:
                payload = _response(500, ERROR_BODY)
            elif b'"stream":true' in body.replace(b" ", b""):
                payload = _response(200, st.stream(), b"text/event-stream")
            else:
                payload = _response(200, st.completion())

            def answer() -> None:
                st.in_flight -= 1
                self.send(payload)

            if st.latency > 0:
                self.loop.call_later(st.latency, answer)
            else:
                answer()
            return
        if path == "/__bench__/stats":
            out = {
                "requests": st.requests,
                "failed": st.failed,
                "max_in_flight": st.max_in_flight,
                "in_flight": st.in_flight,
            }
            self.send(_response(200, json.dumps(out).encode()))
            return
        if path == "/__bench__/reset" and method == "POST":
            st.reset()
            self.send(_response(200, b"{}"))
            return
        if path == "/__bench__/config" and method == "POST":
            cfg: dict[str, Any] = json.loads(body or b"{}")
            if "latency" in cfg:
                st.latency = float(cfg["latency"])
            if "fail_every" in cfg:
                st.fail_every = int(cfg["fail_every"])
            if "model" in cfg:
                st.model = str(cfg["model"])
            if "content" in cfg or "model" in cfg:
                st.set_content(str(cfg.get("content", st.content)))
            self.send(_response(200, b"{}"))
            return
        self.send(_response(404, b'{"error":{"message":"not found","type":"invalid_request_error"}}'))


async def serve(host: str, port: int, state: State, ready: Any = None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Conn(state), host, port, backlog=2048)
    actual = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    if ready is not None:
        ready(actual, stop, loop)
    async with server:
        await stop.wait()


class InThreadServer:
    """The same server on its own event loop in a daemon thread of this process (127.0.0.1, a free
    port): `port`, `base_url`, `state`; `close()` stops it."""

    def __init__(self, latency: float = 0.0, content: str = DEFAULT_CONTENT, model: str = "gpt-4.1-mini"):
        self.state = State(latency, 0, content, model)
        started = threading.Event()
        found: dict[str, Any] = {}

        def ready(port: int, stop: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
            found.update(port=port, stop=stop, loop=loop)
            started.set()

        self._thread = threading.Thread(
            target=asyncio.run, args=(serve("127.0.0.1", 0, self.state, ready),), daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("bench.fake_openai: the in-thread server did not start")
        self.port: int = found["port"]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._stop: asyncio.Event = found["stop"]
        self._loop: asyncio.AbstractEventLoop = found["loop"]

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=5)

    def __enter__(self) -> InThreadServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fake_openai", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--model", default="gpt-4.1-mini")
    ap.add_argument("--content", default=DEFAULT_CONTENT, help="message content of every completion")
    args = ap.parse_args(argv)
    state = State(args.latency, args.fail_every, args.content, args.model)

    def ready(port: int, stop: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def watch_stdin() -> None:  # the parent went away: stop
            sys.stdin.read()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_stdin, daemon=True).start()
        print(f"PORT {port}", flush=True)

    asyncio.run(serve(args.host, args.port, state, ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
