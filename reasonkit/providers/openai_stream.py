"""A streamed Chat Completions reply (`stream: true`, server-sent events), read piece by piece.

The `openai` kind streams when someone watches the reply as it is written (`LLMRequest.on_text`:
`rk think` on a terminal) and always for a server on this machine or the local network
(`OpenAIProvider.streams`: Ollama, llama.cpp, LM Studio, vLLM, where small models loop). Each
piece goes to `on_text` and to a `RepetitionGuard` (providers/repetition.py): a reply that loops
is cut at once, the connection closed (llama.cpp and llama-cpp-python's server stop generating
when the client goes), and the reply returned with `stop_reason="repetition"`.

A stream that ends without a finish reason (and was not cut here) was ended by the server:
llama-cpp-python's server does that to a streamed reply whenever another request is waiting
(`interrupt_requests`, on by default), so with parallel steps nearly every stream would end early.
Such a reply is asked again without streaming, and that server (base URL) gets plain requests
from then on (`INTERRUPTING`), with one warning saying how to keep streaming.

`stream_options.include_usage` asks for the usage in a last chunk; servers that ignore it
(llama-cpp-python's) send none, and the output is then counted as one token per content chunk
(these servers send one chunk per token), the prompt as unknown (0).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from reasonkit.providers.base import TextSink
from reasonkit.providers.repetition import RepetitionGuard

INTERRUPTING: set[str] = set()  # base URLs of servers that ended a stream early: not streamed to again
_LOCK = threading.Lock()


def interrupted(base_url: str) -> None:
    """The server at `base_url` ended a stream before its reply ended: stream to it no more."""
    with _LOCK:
        if base_url in INTERRUPTING:
            return
        INTERRUPTING.add(base_url)
    logger.warning(
        "{} ended a streamed reply early (llama-cpp-python's server does so when another request "
        "waits: start it with --interrupt_requests false); its replies are no longer streamed, so "
        "replies that repeat themselves run to max_tokens there",
        base_url,
    )


@dataclass
class StreamedReply:
    text: str = ""
    arguments: dict[int, str] = field(default_factory=dict)  # tool call index -> its arguments
    names: dict[int, str] = field(default_factory=dict)  # tool call index -> its function name
    finish_reason: str | None = None
    usage: Any = None  # the server's usage block, when it sent one
    events: int = 0  # chunks received (none: the body was not an event stream)
    chunks: int = 0  # chunks that carried text (the token count when no usage came)
    model: str | None = None
    looping: bool = False
    content: list[str] = field(default_factory=list)


async def read_stream(stream: Any, on_text: TextSink | None) -> StreamedReply:
    """Read an `AsyncStream[ChatCompletionChunk]` to its end, or until the reply loops."""
    reply = StreamedReply()
    guard = RepetitionGuard()
    try:
        async for chunk in stream:
            reply.events += 1
            reply.model = chunk.model or reply.model
            if chunk.usage is not None:
                reply.usage = chunk.usage
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            reply.finish_reason = choice.finish_reason or reply.finish_reason
            piece = _piece(reply, choice.delta)
            if not piece:
                continue
            reply.chunks += 1
            if on_text is not None:
                on_text(piece)
            if guard.feed(piece):
                reply.looping = True
                break
    finally:
        await stream.close()  # after a cut: stops the server's generation
    reply.text = "".join(reply.content)
    return reply


def _piece(reply: StreamedReply, delta: Any) -> str:
    """The text a chunk adds: its content and its tool-call argument fragments."""
    if delta is None:
        return ""
    piece = delta.content or ""
    if piece:
        reply.content.append(piece)
    for call in delta.tool_calls or []:
        index = call.index or 0
        function = call.function
        if function is None:
            continue
        if function.name:
            reply.names[index] = function.name
        if function.arguments:
            reply.arguments[index] = reply.arguments.get(index, "") + function.arguments
            piece += function.arguments
    return piece
