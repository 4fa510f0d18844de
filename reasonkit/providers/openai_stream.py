"""A streamed Chat Completions reply (`stream: true`, server-sent events), read piece by piece.

The `openai` kind streams when someone watches the reply as it is written (`LLMRequest.on_text`:
`rk think` on a terminal) and always for a server on this machine or the local network
(`OpenAIProvider.streams`: Ollama, llama.cpp, LM Studio, vLLM, where small models loop). Each
piece goes to `on_text` and to a `RepetitionGuard` (providers/repetition.py): a reply that loops
is cut at once, the connection closed (llama.cpp and llama-cpp-python's server stop generating
when the client goes), and the reply returned with `stop_reason="repetition"`.

`stream_options.include_usage` asks for the usage in a last chunk; servers that ignore it
(llama-cpp-python's) send none, and the output is then counted as one token per content chunk
(these servers send one chunk per token), the prompt as unknown (0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonkit.providers.base import TextSink
from reasonkit.providers.repetition import RepetitionGuard


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
