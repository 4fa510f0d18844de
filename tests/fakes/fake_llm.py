"""A fake LLM HTTP server speaking the Anthropic Messages and OpenAI Chat Completions wire formats.

The server runs uvicorn in a background thread on ``127.0.0.1:<free port>`` and is meant to be
driven through the *real* SDKs::

    with FakeLLM() as fake:
        fake.push(Reply(json={"answer": "42"}))
        client = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="x", max_retries=0)
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="x", max_retries=0)

Endpoints
    POST /v1/messages                                   Anthropic Messages API
    POST /v1/chat/completions, POST /chat/completions   OpenAI Chat Completions API
    GET  /v1/models, GET /models                        model list (Anthropic format if the request
                                                        carries ``anthropic-version``/``x-api-key``)
    anything else                                       404 in the matching API's error format

Scripting
    ``push(Reply(...))`` appends to a FIFO queue; each messages/chat-completions request consumes one
    reply, at the moment it is received (so concurrent requests take replies in arrival order).
    When the queue is empty ``default(request)`` is called (it may be sync or async); if ``default``
    is None the server answers 500 "FakeLLM: no scripted reply". ``schema_filler`` is a ready-made
    default that produces a minimal valid object for whatever JSON schema the request asked for.

    Requests that are malformed at the protocol level (body not a JSON object, missing
    ``model``/``messages``/``max_tokens``, forced tool name not among ``tools``) get a 400
    ``invalid_request_error`` like the real APIs and do NOT consume a scripted reply.

With ``"stream": true`` an OpenAI request gets the same reply as server-sent events
(``chat.completion.chunk`` objects, a few characters each; the usage in a last chunk when
``stream_options.include_usage`` asks for it), as the real API sends them.

Every request (except the internal health check) is appended to ``requests`` as a
``RecordedRequest``, except model listings (``GET /models``), which go to ``model_listings``: an
OpenAI-compatible provider with no model configured lists the models while it is built, and tests
count and read the completion calls.

Server personalities
    ``fake.personality = "llama_cpp_python"`` (see ``PERSONALITIES``) makes the OpenAI endpoint treat
    the output-mode fields (``response_format`` json_schema / json_object, ``tools``) the way that
    real server does: accept them, reject them with that server's own error body and status, or
    silently drop them (a gateway). With ``fake.context_window = N`` (tokens, about 4 characters
    each) a prompt + max_tokens beyond N gets the server's context-overflow error; a model not in
    ``openai_models`` gets its model-not-found error where the real server has one. Rejections do
    NOT consume a scripted reply. ``schema_or_prose`` is a default handler that answers like a model:
    the schema it can see (not a dropped one) filled in, else prose.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import inspect
import itertools
import json
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from reasonkit.providers.schema_fill import fill_schema

__all__ = [
    "PERSONALITIES",
    "FakeLLM",
    "Personality",
    "RecordedRequest",
    "Reply",
    "schema_filler",
    "schema_or_prose",
]

_HEALTH_PATH = "/__fakellm__/health"
_ANTHROPIC_PATHS = frozenset({"/v1/messages"})
_OPENAI_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_MODELS_PATHS = frozenset({"/v1/models", "/models"})

_USAGE_KEYS = frozenset({"input", "output", "cache_read", "cache_write"})
_STOPS = frozenset({"end", "max_tokens"})

# Default error `type`s per status, as the real APIs send them.
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {  # status -> (type, code)
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


# --------------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer. See the module docstring and field comments."""

    # Structured object to return. Anthropic: forced tool (tool_choice type "tool", or "any" with a
    # single tool) -> tool_use block with this as `input`, stop_reason "tool_use"; otherwise
    # json.dumps(json) as a text block. OpenAI: json.dumps(json) as message.content (or, if the
    # request forced a function tool, as tool_calls[0].function.arguments).
    json: Any = None
    # Raw text returned verbatim instead of `json` (prose around JSON, code fences, broken JSON...).
    # Anthropic with a forced tool and only `text`: a text block, stop_reason "end_turn" (a model
    # that ignored the tool). With both `text` and `json` and a forced tool: [text, tool_use].
    # For error replies (status != 200) `text` is used as the error message.
    text: str | None = None
    stop: str = "end"  # "end" | "max_tokens"
    status: int = 200  # != 200 -> error body in the API's format
    error_type: str | None = None  # e.g. "rate_limit_error"; default derived from status
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers, e.g. retry-after
    delay: float = 0.0  # seconds before answering (non-blocking; concurrent requests overlap)
    usage: dict[str, int] | None = None  # keys: input, output, cache_read, cache_write
    raw_body: bytes | None = None  # send these bytes verbatim (with `status`)
    drop_connection: bool = False  # reset the TCP connection instead of answering
    # Streamed (`stream: true`) only: end the stream halfway with `data: [DONE]` and no finish
    # reason, as llama-cpp-python's server does when another request waits (interrupt_requests).
    interrupted: bool = False

    def __post_init__(self) -> None:
        if self.stop not in _STOPS:
            raise ValueError(f"Reply.stop must be one of {sorted(_STOPS)}, got {self.stop!r}")
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise ValueError(f"Reply.status must be an HTTP status code, got {self.status!r}")
        if self.usage is not None:
            unknown = set(self.usage) - _USAGE_KEYS
            if unknown:
                raise ValueError(
                    f"Reply.usage has unknown keys {sorted(unknown)}; allowed: {sorted(_USAGE_KEYS)}"
                )
        if self.delay < 0:
            raise ValueError("Reply.delay must be >= 0")
        if self.raw_body is not None and not isinstance(self.raw_body, bytes | bytearray):
            raise TypeError("Reply.raw_body must be bytes")
        self.headers = {str(k).lower(): str(v) for k, v in (self.headers or {}).items()}


@dataclass
class RecordedRequest:
    api: str  # "anthropic" | "openai"
    path: str
    headers: dict[str, str]  # lower-case keys
    body: dict[str, Any]  # parsed JSON body ({} if none / not a JSON object)
    received_at: float  # time.monotonic()
    finished_at: float | None = None  # time.monotonic() when the answer was sent (or the socket dropped)
    method: str = "POST"
    raw_body: bytes = b""
    status: int | None = None  # HTTP status sent; None if the connection was dropped
    reply: Reply | None = None  # the Reply used (None for models / 404 / validation errors)
    # request fields the server personality dropped without a word (a gateway): the "model" never sees them
    ignored: frozenset[str] = frozenset()

    # ---- conveniences for assertions and default handlers ----

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def forced_tool(self) -> dict[str, Any] | None:
        """The tool definition the request forces (Anthropic tool / OpenAI function), if any."""
        return _forced_tool(self)

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON schema the request asked the model to fill, if one can be found."""
        return _requested_schema(self)

    @property
    def text(self) -> str:
        """All prompt text (system + messages), joined by newlines."""
        return "\n".join(_prompt_texts(self))

    @property
    def last_user_text(self) -> str:
        for msg in reversed(self.body.get("messages") or []):
            if isinstance(msg, dict) and msg.get("role") == "user":
                return "\n".join(_collect_text(msg.get("content")))
        return ""


# --------------------------------------------------------------------------------------------------
# Request inspection helpers
# --------------------------------------------------------------------------------------------------


def _collect_text(obj: Any) -> list[str]:
    """Prompt-ish text in a message content value (strings, text blocks, tool inputs/results)."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, list):
        return [t for item in obj for t in _collect_text(item)]
    if isinstance(obj, dict):
        out: list[str] = []
        for key in ("text", "content", "input", "arguments", "tool_calls", "function"):
            if key not in obj:
                continue
            value = obj[key]
            if key == "input" and not isinstance(value, str):
                out.append(json.dumps(value))
            else:
                out.extend(_collect_text(value))
        return out
    return []


def _prompt_texts(req: RecordedRequest) -> list[str]:
    texts = _collect_text(req.body.get("system"))
    for msg in req.body.get("messages") or []:
        if isinstance(msg, dict):
            texts.extend(_collect_text(msg.get("content")))
            texts.extend(_collect_text(msg.get("tool_calls")))
    return texts


def _forced_tool(req: RecordedRequest) -> dict[str, Any] | None:
    body = req.body
    if "tools" in req.ignored:
        return None
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if req.api == "anthropic":
        if not isinstance(choice, dict):
            return None
        if choice.get("type") == "tool":
            return next((t for t in tools if t.get("name") == choice.get("name")), None)
        if choice.get("type") == "any" and len(tools) == 1:
            return tools[0]
        return None
    if req.api == "openai":
        functions = [t for t in tools if t.get("type") == "function" and isinstance(t.get("function"), dict)]
        if isinstance(choice, dict) and choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            return next((t for t in functions if t["function"].get("name") == name), None)
        if choice == "required" and len(functions) == 1:
            return functions[0]
    return None


def _requested_schema(req: RecordedRequest) -> dict[str, Any] | None:
    tool = _forced_tool(req)
    body = req.body
    schema: Any = None
    if req.api == "anthropic":
        if tool is not None:
            schema = tool.get("input_schema")
        if schema is None:
            fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
            if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
                schema = fmt.get("schema")
    elif req.api == "openai":
        if tool is not None:
            schema = tool["function"].get("parameters")
        fmt = body.get("response_format") if "response_format" not in req.ignored else None
        if schema is None and isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
        if schema is None and isinstance(fmt, dict) and fmt.get("type") == "json_object":
            schema = fmt.get("schema")  # the llama.cpp / llama-cpp-python extension
    if isinstance(schema, dict):
        return schema
    match = re.search(r"<schema>(.*?)</schema>", req.last_user_text, re.DOTALL) or re.search(
        r"<schema>(.*?)</schema>", req.text, re.DOTALL
    )
    if match:
        try:
            parsed = json.loads(match.group(1).strip())
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


# --------------------------------------------------------------------------------------------------
# schema_filler
# --------------------------------------------------------------------------------------------------


def schema_filler(req: RecordedRequest) -> Reply:
    """Default handler: a minimal *valid* object for the JSON schema the request asked for.

    Schema source, in order: Anthropic forced tool ``input_schema`` / ``output_config.format.schema``;
    OpenAI forced function ``parameters`` / ``response_format.json_schema.schema``; a JSON schema
    between ``<schema>`` and ``</schema>`` in the prompt (last user message first). Without one it answers
    ``{"answer": "ok", "confidence": 0.8}``.

    The object is ``reasonkit.providers.fake.fill_schema(schema)`` (what it supports is listed there;
    not ``pattern``: strings are "<property name>[-n]").
    """
    schema = _requested_schema(req)
    if schema is None:
        return Reply(json={"answer": "ok", "confidence": 0.8})
    value = fill_schema(schema)
    if isinstance(value, dict):
        return Reply(json=value)
    return Reply(text=json.dumps(value))


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


class _FakeLLMError(Exception):
    """Raised inside the app to answer with an error in the request's API format."""

    def __init__(self, status: int, message: str, error_type: str | None = None, payload: Any = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.payload = payload  # a server personality's own error body, sent as it is


class _Server(uvicorn.Server):
    """uvicorn.Server that stops promptly: the stock one polls ``should_exit`` every 0.1 s and sleeps
    another 0.1 s during shutdown, which would add ~0.2 s to every test using the fixture."""

    stop_event: asyncio.Event | None = None

    async def main_loop(self) -> None:
        assert self.stop_event is not None
        counter = 0
        while not await self.on_tick(counter):  # on_tick refreshes the Date header when counter % 10 == 0
            counter = (counter + 10) % 864000
            try:
                await asyncio.wait_for(self.stop_event.wait(), timeout=1.0)
            except TimeoutError:
                pass

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state = getattr(self, "server_state", None)
        if state is None or not hasattr(state, "connections") or not hasattr(state, "tasks"):
            await super().shutdown(sockets=sockets)  # pragma: no cover - future uvicorn internals
            return
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(state.connections):
            connection.shutdown()  # idle keep-alive connections close now, busy ones after responding
        deadline = time.monotonic() + 5.0

        while (state.connections or state.tasks) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        for task in list(state.tasks):
            task.cancel()
        for server in self.servers:
            await server.wait_closed()


class FakeLLM:
    """Fake Anthropic + OpenAI endpoint on 127.0.0.1. See the module docstring."""

    anthropic_models: list[str]
    openai_models: list[str]

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.model_listings: list[RecordedRequest] = []
        # sync or async; called (in the server thread) for each request when the queue is empty
        self.default: Callable[[RecordedRequest], Reply | Awaitable[Reply]] | None = None
        self.max_concurrent: int = 0
        self.anthropic_models = ["claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"]
        self.openai_models = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]
        # a key of PERSONALITIES: how the OpenAI endpoint treats output-mode fields, overflow, models
        self.personality: str | None = None
        self.context_window: int | None = None  # tokens; None: no limit
        self._queue: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._ids = itertools.count(1)
        self._port: int | None = None
        self._sock: socket.socket | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread_error: BaseException | None = None

    # ---- addresses ----

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeLLM is not started; call start() or use it as a context manager")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    # ---- scripting ----

    def push(self, *replies: Reply) -> None:
        for reply in replies:
            # Duck-typed on purpose: pytest may import this module under two names
            # (``tests.fakes.fake_llm`` and ``fakes.fake_llm``).
            if not all(hasattr(reply, a) for a in ("json", "text", "status", "drop_connection", "delay")):
                raise TypeError(f"FakeLLM.push expects Reply objects, got {type(reply).__name__}")
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Number of scripted replies not yet consumed."""
        with self._lock:
            return len(self._queue)

    def clear(self) -> None:
        """Forget scripted replies, recorded requests and ``max_concurrent`` (``default`` is kept)."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.model_listings.clear()
            self.max_concurrent = 0

    # ---- lifecycle ----

    def start(self) -> FakeLLM:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            log_config=None,  # don't touch global logging config; records propagate to pytest
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            proxy_headers=False,
            http="h11",
            ws="none",
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._thread_error = None
        self._thread = threading.Thread(target=self._run, name=f"FakeLLM-{self._port}", daemon=True)
        self._thread.start()
        try:
            self._wait_until_ready(timeout=10.0)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        server.should_exit = True
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop_event.set)  # wake the main loop and any delayed replies
            except RuntimeError:  # loop already closed
                pass
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        if thread.is_alive():
            raise RuntimeError("FakeLLM: server thread did not stop")
        self._thread = self._server = self._loop = self._stop_event = self._sock = None
        self._port = None
        error, self._thread_error = self._thread_error, None
        if error is not None:
            raise RuntimeError(f"FakeLLM server thread crashed: {error!r}") from error

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - surfaced by start()/stop()
            self._thread_error = exc

    async def _serve(self) -> None:
        assert self._server is not None and self._sock is not None
        self._loop = asyncio.get_running_loop()
        self._stop_event = self._server.stop_event = asyncio.Event()
        await self._server.serve(sockets=[self._sock])

    def _wait_until_ready(self, timeout: float) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"FakeLLM failed to start: {self._thread_error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("FakeLLM did not start in time")
            time.sleep(0.005)
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=max(0.1, deadline - time.monotonic())
        )
        try:
            conn.request("GET", _HEALTH_PATH)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"FakeLLM health check answered {resp.status}")
        finally:
            conn.close()

    # ---- ASGI app ----

    async def _asgi(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            return
        received_at = time.monotonic()
        path: str = scope["path"]
        method: str = scope["method"]
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            key, val = k.decode("latin-1").lower(), v.decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)

        if path == _HEALTH_PATH:
            await _send(send, 200, b"ok", {"content-type": "text/plain"})
            return

        if path in _ANTHROPIC_PATHS:
            api = "anthropic"
        elif path in _OPENAI_PATHS:
            api = "openai"
        else:
            api = "anthropic" if ("anthropic-version" in headers or "x-api-key" in headers) else "openai"

        body: Any = {}
        body_error = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                body_error = f"Request body is not valid JSON: {exc}"
            if not isinstance(body, dict):
                body_error = body_error or "Request body must be a JSON object"
                body = {}

        req = RecordedRequest(
            api=api,
            path=path,
            headers=headers,
            body=body,
            received_at=received_at,
            method=method,
            raw_body=raw,
        )
        with self._lock:
            (self.model_listings if path in _MODELS_PATHS else self.requests).append(req)
            self._in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self._in_flight)
        tracked = _TrackedSend(send, req, self)
        try:
            await self._handle(req, body_error, tracked)
        finally:
            tracked.finish()

    async def _handle(self, req: RecordedRequest, body_error: str | None, send: Callable[..., Any]) -> None:
        api = req.api
        try:
            if req.path in _MODELS_PATHS:
                if req.method != "GET":
                    raise _FakeLLMError(405, f"Method {req.method} not allowed on {req.path}")
                payload = self._models_body(api)
                await _send_json(send, 200, payload, self._response_headers(api))
                return
            reply = await self._checked_reply(req, body_error)
        except _FakeLLMError as err:
            if err.payload is not None:
                await _send_json(send, err.status, err.payload, self._response_headers(api))
                return
            await self._send_error(send, api, err.status, err.message, err.error_type, {})
            return

        req.reply = reply
        if reply.delay > 0:
            assert self._stop_event is not None
            try:
                await asyncio.wait_for(self._stop_event.wait(), timeout=reply.delay)
            except TimeoutError:
                pass
            else:  # server is stopping: don't hold up shutdown
                await _drop(send)
                return

        if reply.drop_connection:
            await _drop(send)
            return

        headers = self._response_headers(api)
        headers.update(reply.headers)
        if reply.raw_body is not None:
            headers.setdefault("content-type", "application/json")
            await _send(send, reply.status, bytes(reply.raw_body), headers)
            return
        if reply.status != 200:
            await self._send_error(send, api, reply.status, reply.text, reply.error_type, reply.headers)
            return
        try:
            payload = (
                self._anthropic_body(req, reply) if api == "anthropic" else self._openai_body(req, reply)
            )
        except _FakeLLMError as err:
            await self._send_error(send, api, err.status, err.message, err.error_type, {})
            return
        await _send_reply(send, req, payload, headers)

    async def _checked_reply(self, req: RecordedRequest, body_error: str | None) -> Reply:
        """The scripted reply for a completion request, after the checks a real API makes first
        (endpoint, method, JSON body, request shape, the personality's limits): each raises the
        error the real API would send."""
        if req.path not in _ANTHROPIC_PATHS and req.path not in _OPENAI_PATHS:
            raise _FakeLLMError(404, f"FakeLLM: unknown endpoint {req.method} {req.path}")
        if req.method != "POST":
            raise _FakeLLMError(405, f"Method {req.method} not allowed on {req.path}")
        if body_error:
            raise _FakeLLMError(400, body_error)
        _validate(req)
        if req.api == "openai" and self.personality is not None:
            _personality_gate(self, req)
        return await self._next_reply(req)

    async def _next_reply(self, req: RecordedRequest) -> Reply:
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
            default = self.default
        if reply is not None:
            return reply
        if default is None:
            raise _FakeLLMError(
                500, "FakeLLM: no scripted reply (queue empty and no default handler)", "api_error"
            )
        try:
            result = default(req)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise _FakeLLMError(500, f"FakeLLM: default handler raised {exc!r}", "api_error") from exc
        if not hasattr(result, "drop_connection"):
            raise _FakeLLMError(500, f"FakeLLM: default handler returned {type(result).__name__}, not Reply")
        return result

    # ---- bodies ----

    def _next_id(self) -> str:
        return f"{next(self._ids):024d}"

    def _response_headers(self, api: str) -> dict[str, str]:
        if api == "anthropic":
            return {"content-type": "application/json", "request-id": f"req_fake{self._next_id()}"}
        return {
            "content-type": "application/json",
            "x-request-id": f"req_fake{self._next_id()}",
            "openai-processing-ms": "1",
        }

    def _models_body(self, api: str) -> dict[str, Any]:
        if api == "anthropic":
            data = [
                {
                    "type": "model",
                    "id": m,
                    "display_name": m,
                    "created_at": "2025-01-01T00:00:00Z",
                    "lifecycle": "active",
                }
                for m in self.anthropic_models
            ]
            return {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        # llama-cpp-python's server lists its models as owned by "me" (measured, 0.3); a serial
        # server is recognised by it (reasonkit/providers/openai_compat.py)
        owner = "me" if self.personality == "llama_cpp_python" else "fake-llm"
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": owner}
                for m in self.openai_models
            ],
        }

    async def _send_error(
        self,
        send: Callable[..., Any],
        api: str,
        status: int,
        message: str | None,
        error_type: str | None,
        extra_headers: dict[str, str],
    ) -> None:
        message = message or f"FakeLLM scripted error (HTTP {status})"
        headers = self._response_headers(api)
        headers.update(extra_headers)
        if api == "anthropic":
            etype = error_type or _ANTHROPIC_ERROR_TYPES.get(
                status, "api_error" if status >= 500 else "invalid_request_error"
            )
            payload: dict[str, Any] = {
                "type": "error",
                "error": {"type": etype, "message": message},
                "request_id": headers.get("request-id"),
            }
        else:
            default_type, code = _OPENAI_ERROR_TYPES.get(
                status, ("server_error" if status >= 500 else "invalid_request_error", None)
            )
            payload = {
                "error": {"message": message, "type": error_type or default_type, "param": None, "code": code}
            }
        await _send_json(send, status, payload, headers)

    @staticmethod
    def _usage(req: RecordedRequest, reply: Reply, output_text: str) -> dict[str, int]:
        override = reply.usage or {}
        return {
            "input": int(override.get("input", max(1, len("".join(_prompt_texts(req))) // 4))),
            "output": int(override.get("output", max(1, len(output_text) // 4))),
            "cache_read": int(override.get("cache_read", 0)),
            "cache_write": int(override.get("cache_write", 0)),
        }

    def _anthropic_body(self, req: RecordedRequest, reply: Reply) -> dict[str, Any]:
        tool = _forced_tool(req)
        content: list[dict[str, Any]] = []
        if reply.text is not None:
            content.append({"type": "text", "text": reply.text})
        if tool is not None and reply.json is not None:
            if not isinstance(reply.json, dict):
                raise _FakeLLMError(500, "FakeLLM: Reply.json must be a dict when the request forces a tool")
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_fake{self._next_id()}",
                    "name": tool["name"],
                    "input": reply.json,
                }
            )
        elif reply.text is None:
            content.append({"type": "text", "text": "" if reply.json is None else json.dumps(reply.json)})

        if reply.stop == "max_tokens":
            stop_reason = "max_tokens"
        elif any(b["type"] == "tool_use" for b in content):
            stop_reason = "tool_use"
        else:
            stop_reason = "end_turn"
        output_text = "".join(b["text"] if b["type"] == "text" else json.dumps(b["input"]) for b in content)
        u = self._usage(req, reply, output_text)
        return {
            "id": f"msg_fake{self._next_id()}",
            "type": "message",
            "role": "assistant",
            "model": req.body.get("model", "claude-fake"),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": u["input"],
                "cache_creation_input_tokens": u["cache_write"],
                "cache_read_input_tokens": u["cache_read"],
                "cache_creation": {
                    "ephemeral_5m_input_tokens": u["cache_write"],
                    "ephemeral_1h_input_tokens": 0,
                },
                "output_tokens": u["output"],
                "service_tier": "standard",
            },
        }

    def _openai_body(self, req: RecordedRequest, reply: Reply) -> dict[str, Any]:
        tool = _forced_tool(req)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        output_text = ""
        if tool is not None and reply.json is not None:
            arguments = json.dumps(reply.json)
            message["tool_calls"] = [
                {
                    "id": f"call_fake{self._next_id()}",
                    "type": "function",
                    "function": {"name": tool["function"]["name"], "arguments": arguments},
                }
            ]
            message["content"] = reply.text
            output_text = (reply.text or "") + arguments
        else:
            text = (
                reply.text
                if reply.text is not None
                else ("" if reply.json is None else json.dumps(reply.json))
            )
            message["content"] = text
            output_text = text
        u = self._usage(req, reply, output_text)
        # OpenAI counts cached (and, OpenRouter-style, cache-written) tokens INSIDE prompt_tokens.
        prompt_tokens = u["input"] + u["cache_read"] + u["cache_write"]
        return {
            "id": f"chatcmpl-fake{self._next_id()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.body.get("model", "gpt-fake"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    # A forced tool_choice yields finish_reason "stop" on the real API, not "tool_calls".
                    "finish_reason": "length" if reply.stop == "max_tokens" else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": u["output"],
                "total_tokens": prompt_tokens + u["output"],
                "prompt_tokens_details": {
                    "cached_tokens": u["cache_read"],
                    "cache_write_tokens": u["cache_write"],
                    "audio_tokens": 0,
                },
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fakellm",
        }


def _validate(req: RecordedRequest) -> None:
    body = req.body
    missing = [k for k in ("model", "messages") if k not in body]
    if req.api == "anthropic" and "max_tokens" not in body:
        missing.append("max_tokens")
    if missing:
        raise _FakeLLMError(400, f"{missing[0]}: Field required")
    if not isinstance(body["messages"], list) or not body["messages"]:
        raise _FakeLLMError(400, "messages: at least one message is required")
    choice = body.get("tool_choice")
    if req.api == "anthropic" and isinstance(choice, dict) and choice.get("type") == "tool":
        names = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        if choice.get("name") not in names:
            raise _FakeLLMError(400, f"tool_choice: tool {choice.get('name')!r} not found in tools")
    if req.api == "openai" and isinstance(choice, dict) and choice.get("type") == "function":
        names = [
            (t.get("function") or {}).get("name") for t in body.get("tools") or [] if isinstance(t, dict)
        ]
        if (choice.get("function") or {}).get("name") not in names:
            raise _FakeLLMError(400, "Invalid value for 'tool_choice': function not found in 'tools'")


class _TrackedSend:
    """Wraps uvicorn's ``send``: records status and marks the request finished *before* the last body
    chunk goes out, so a client that has its answer always sees ``finished_at``/``status`` set and
    the in-flight count already decremented."""

    def __init__(self, raw: Callable[..., Any], req: RecordedRequest, fake: FakeLLM):
        self.raw = raw
        self.req = req
        self.fake = fake
        self.done = False

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.req.finished_at = time.monotonic()
        with self.fake._lock:
            self.fake._in_flight -= 1

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.req.status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            self.finish()
        await self.raw(message)


async def _send(send: Callable[..., Any], status: int, body: bytes, headers: dict[str, str]) -> None:
    headers = {**headers, "content-length": str(len(body))}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


STREAM_PIECE = 4  # characters per streamed chunk (about a token, as real servers send them)


def _openai_chunks(body: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A Chat Completions body as the `chat.completion.chunk` objects of `stream: true`: the role,
    the content (and tool-call arguments) a few characters at a time, the finish reason, and the
    usage in a last chunk without choices when `stream_options.include_usage` asked for it."""
    choice = body["choices"][0]
    message = choice["message"]
    base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return {**out, "usage": None} if include_usage else out

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    content = message.get("content") or ""
    chunks += [
        chunk({"content": content[i : i + STREAM_PIECE]}) for i in range(0, len(content), STREAM_PIECE)
    ]
    for index, call in enumerate(message.get("tool_calls") or []):
        head = {"index": index, "id": call["id"], "type": "function"}
        chunks.append(
            chunk({"tool_calls": [{**head, "function": {"name": call["function"]["name"], "arguments": ""}}]})
        )
        arguments = call["function"]["arguments"]
        chunks += [
            chunk(
                {"tool_calls": [{"index": index, "function": {"arguments": arguments[i : i + STREAM_PIECE]}}]}
            )
            for i in range(0, len(arguments), STREAM_PIECE)
        ]
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return chunks


async def _send_sse(send: Callable[..., Any], chunks: list[dict[str, Any]], headers: dict[str, str]) -> None:
    """Server-sent events, one `data:` event per chunk, then `data: [DONE]`."""
    headers = {**headers, "content-type": "text/event-stream; charset=utf-8"}
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        }
    )
    for item in chunks:
        await send(
            {
                "type": "http.response.body",
                "body": f"data: {json.dumps(item)}\n\n".encode(),
                "more_body": True,
            }
        )
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


async def _send_reply(
    send: Callable[..., Any], req: RecordedRequest, payload: dict[str, Any], headers: dict[str, str]
) -> None:
    """A 200 reply: server-sent events for an OpenAI request with `"stream": true`, else one body."""
    if req.api == "openai" and req.body.get("stream") is True:
        options = req.body.get("stream_options") or {}
        chunks = _openai_chunks(payload, bool(options.get("include_usage")))
        if req.reply is not None and req.reply.interrupted:
            chunks = chunks[: len(chunks) // 2]
        await _send_sse(send, chunks, headers)
        return
    await _send_json(send, 200, payload, headers)


async def _send_json(send: Callable[..., Any], status: int, payload: Any, headers: dict[str, str]) -> None:
    await _send(send, status, json.dumps(payload).encode(), headers)


async def _drop(send: Callable[..., Any]) -> None:
    """Reset the TCP connection without sending a response.

    ASGI has no "drop" primitive, so reach into uvicorn's request cycle (the bound ``send``) for the
    transport; SO_LINGER(1, 0) makes close() send an RST (ECONNRESET on the client).
    """
    if isinstance(send, _TrackedSend):
        send.finish()
        send = send.raw
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # pragma: no cover - unexpected server; fall back to a truncated response
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise ConnectionAbortedError("FakeLLM drop_connection")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
    if cycle is not None:
        cycle.disconnected = True  # uvicorn: don't complain that the app returned without responding
    await asyncio.sleep(0)


# --------------------------------------------------------------------------------------------------
# Server personalities: how real OpenAI-compatible servers treat output modes, overflow and models
# --------------------------------------------------------------------------------------------------

ErrorBody = tuple[int, Any]  # (HTTP status, JSON body)


def _too_long(window: int, prompt: int, completion: int) -> str:
    return (
        f"This model's maximum context length is {window} tokens. However, you requested "
        f"{prompt + completion} tokens ({prompt} in the messages, {completion} in the completion). "
        "Please reduce the length of the messages or completion."
    )


def _openai_error(message: str, etype: str, code: str | None = None, param: str | None = None) -> Any:
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def _llama_cpp_python_reject(feature: str) -> ErrorBody:
    # FastAPI's RequestValidationError, caught by llama-cpp-python's RouteErrorHandler and sent as a
    # 500 "internal_server_error" whose message is the pydantic error text plus the route (this body
    # is the one llama-cpp-python 0.3 answered `python -m llama_cpp.server` with, measured).
    detail = (
        "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': '" + feature + "', "
        "'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n"
        '  File "llama_cpp/server/app.py", line 376, in create_chat_completion\n'
        "    POST /v1/chat/completions"
    )
    return 500, _openai_error(detail, "internal_server_error")


def _fastapi_extra_forbidden(feature: str) -> ErrorBody:
    field_name = "tools" if feature == "tools" else "response_format"
    item = {"type": "extra_forbidden", "loc": ["body", field_name], "msg": "Extra inputs are not permitted"}
    return 422, {"detail": [item]}


@dataclass(frozen=True)
class Personality:
    """How one real server treats the output-mode fields: each of json_schema / json_object / tools
    is "ok", "reject" (answered with `reject(feature)`) or "ignore" (dropped silently)."""

    name: str
    json_schema: str = "ok"
    json_object: str = "ok"
    tools: str = "ok"
    reject: Callable[[str], ErrorBody] | None = None
    # (window, prompt tokens, completion tokens) -> error; None: the server truncates silently
    overflow: Callable[[int, int, int], ErrorBody] | None = None
    # model -> error; None: the server answers with whatever model it has loaded
    unknown_model: Callable[[str], ErrorBody] | None = None


PERSONALITIES: dict[str, Personality] = {
    p.name: p
    for p in [
        Personality(
            "openai",
            overflow=lambda w, p, c: (
                400,
                _openai_error(
                    f"This model's maximum context length is {w} tokens. However, your messages "
                    f"resulted in {p} tokens. Please reduce the length of the messages.",
                    "invalid_request_error",
                    "context_length_exceeded",
                    "messages",
                ),
            ),
            unknown_model=lambda m: (
                404,
                _openai_error(
                    f"The model `{m}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                ),
            ),
        ),
        # python -m llama_cpp.server: response_format type is Literal["text", "json_object"] (+ schema)
        Personality(
            "llama_cpp_python",
            json_schema="reject",
            reject=_llama_cpp_python_reject,
            overflow=lambda w, p, c: (
                400,
                _openai_error(
                    _too_long(w, p, c), "invalid_request_error", "context_length_exceeded", "messages"
                ),
            ),
        ),
        # llama.cpp llama-server: json_schema, json_object (+ schema) and tools (with --jinja)
        Personality(
            "llama_server",
            overflow=lambda w, p, c: (
                400,
                {
                    "error": {
                        "code": 400,
                        "message": f"request ({p} tokens) exceeds the available context size ({w} tokens), "
                        "try increasing it",
                        "type": "exceed_context_size_error",
                        "n_prompt_tokens": p,
                        "n_ctx": w,
                    }
                },
            ),
        ),
        # Ollama /v1: json_schema (0.5+), json_object, tools; a long prompt is truncated, not refused
        Personality(
            "ollama",
            unknown_model=lambda m: (
                404,
                _openai_error(f'model "{m}" not found, try pulling it first', "api_error"),
            ),
        ),
        # vLLM: its own error shape ({"object": "error", ...}) at the top level
        Personality(
            "vllm",
            overflow=lambda w, p, c: (
                400,
                {
                    "object": "error",
                    "message": _too_long(w, p, c),
                    "type": "BadRequestError",
                    "param": None,
                    "code": 400,
                },
            ),
            unknown_model=lambda m: (
                404,
                {
                    "object": "error",
                    "message": f"The model `{m}` does not exist.",
                    "type": "NotFoundError",
                    "param": None,
                    "code": 404,
                },
            ),
        ),
        # LM Studio: json_schema only; json_object is refused with a plain-string error
        Personality(
            "lm_studio",
            json_object="reject",
            reject=lambda feature: (400, {"error": "'response_format.type' must be 'json_schema' or 'text'"}),
        ),
        # a gateway/proxy that drops response_format on the way (the model never sees it)
        Personality("strips_response_format", json_schema="ignore", json_object="ignore"),
        # a text-only server: response_format and tools are refused by strict request validation
        Personality(
            "no_tools",
            json_schema="reject",
            json_object="reject",
            tools="reject",
            reject=_fastapi_extra_forbidden,
        ),
    ]
}


def _personality_gate(fake: FakeLLM, req: RecordedRequest) -> None:
    """Raise the personality's error for this request, or mark fields it drops (req.ignored)."""
    assert fake.personality is not None
    persona = PERSONALITIES[fake.personality]
    body = req.body
    fmt = body.get("response_format")
    features: list[tuple[str, str]] = []  # (feature, request field)
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        features.append((fmt["type"], "response_format"))
    if body.get("tools"):
        features.append(("tools", "tools"))
    ignored = set()
    for feature, field_name in features:
        verdict = getattr(persona, feature)
        if verdict == "reject":
            assert persona.reject is not None
            status, payload = persona.reject(feature)
            raise _FakeLLMError(status, f"{persona.name} rejects {feature}", payload=payload)
        if verdict == "ignore":
            ignored.add(field_name)
    req.ignored = frozenset(ignored)
    model = req.model
    if persona.unknown_model is not None and model not in fake.openai_models:
        status, payload = persona.unknown_model(str(model))
        raise _FakeLLMError(status, "unknown model", payload=payload)
    if fake.context_window is not None:
        prompt = max(1, len("".join(_prompt_texts(req))) // 4)
        completion = int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)
        if prompt + completion > fake.context_window and persona.overflow is not None:
            status, payload = persona.overflow(fake.context_window, prompt, completion)
            raise _FakeLLMError(status, "context overflow", payload=payload)


def schema_or_prose(req: RecordedRequest) -> Reply:
    """Default handler that behaves like a model: the schema it can see (response_format, forced
    tool or ``<schema>`` in the prompt; not a field the server dropped) filled in, else prose."""
    if _requested_schema(req) is None:
        return Reply(text="Sure! The answer is ok, and I am fairly confident about it.")
    return schema_filler(req)


# pytest's rootdir-relative imports can make this file importable both as ``tests.fakes.fake_llm``
# (``python -m pytest`` from the repo root) and as ``fakes.fake_llm`` (plain ``pytest``). Register
# both names so every importer gets the same module object (and the same Reply/FakeLLM classes).
for _alias in ("tests.fakes.fake_llm", "fakes.fake_llm"):
    sys.modules.setdefault(_alias, sys.modules[__name__])
del _alias
