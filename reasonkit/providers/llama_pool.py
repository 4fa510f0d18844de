"""The loaded llama.cpp models of the `local` provider (providers/local.py): a process-wide pool of
contexts per model file and options, each used by one caller at a time, loaded lazily.

Each context is loaded and decodes on a thread of its own, for as long as it lives (`_Context.run`):
once two threads of a process had decoded with llama.cpp, decoding was measured 2.3-2.6x slower
(llama-cpp-python 0.3 on 2 cores; libgomp's thread team per calling thread is the suspect), and
the event loop's worker threads are many and change from call to call (issue 26).

Every pool is closed at exit (`atexit`), while the interpreter is still whole: left to the garbage
collector during interpreter teardown, `Llama.__del__` runs after the modules it needs are gone and
prints `Exception ignored in: <function Llama.__del__ ...> TypeError` on every shutdown, which lands
in an MCP client's server log. A context still in use by a generating thread at exit (the run was
interrupted) is skipped: closing it under that thread would crash the process.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, TypeVar

from reasonkit.errors import GenerationStopped, ProviderError

INSTALL_HINT = "pip install 'reasonkit[local]'"
_T = TypeVar("_T")


class PoolOptions(Protocol):
    """What the pool reads of the local provider's options (`local.LocalOptions`)."""

    @property
    def n_ctx(self) -> int: ...
    @property
    def n_threads(self) -> int | None: ...
    @property
    def n_gpu_layers(self) -> int: ...
    @property
    def contexts(self) -> int: ...


class _NoSuppress:
    """Stands in for llama_cpp's `suppress_stdout_stderr`, which dup2()s /dev/null over file
    descriptors 1 and 2 of the whole process while a model loads: a stdio MCP server writing a
    reply from another thread at that moment would lose it. With verbose=False llama.cpp logs
    nothing below ERROR anyway."""

    def __init__(self, disable: bool = True):
        self.disable = disable

    def __enter__(self) -> _NoSuppress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _keep_stdio() -> None:
    import llama_cpp._internals
    import llama_cpp.llama

    llama_cpp.llama.suppress_stdout_stderr = _NoSuppress  # type: ignore[attr-defined, misc, assignment]
    llama_cpp._internals.suppress_stdout_stderr = _NoSuppress  # type: ignore[attr-defined, misc, assignment]


class _DecodeThread:
    """One thread that runs the work handed to it, in order, for as long as its context lives. A
    daemon thread of our own rather than a `ThreadPoolExecutor`: the close at exit (atexit) runs
    after the executors' own exit hook has stopped taking work."""

    def __init__(self, name: str):
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def run(self, work: Callable[[], _T]) -> _T:
        """`work()` on this thread; blocks until it is done (its exception is raised here)."""
        if threading.current_thread() is self.thread:
            return work()
        future: Future[_T] = Future()

        def job() -> None:
            try:
                future.set_result(work())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
                future.set_exception(exc)

        self._jobs.put(job)
        return future.result()

    def stop(self) -> None:
        self._jobs.put(None)


class _Context:
    """One loaded llama.cpp context plus its chat formatter and the thread it decodes on."""

    decoder: _DecodeThread  # set by the pool, which loaded the context on this thread

    def __init__(self, llama: Any):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama = llama
        model = llama._model

        def text_of(token: int) -> str:
            return str(model.token_get_text(token)) if token != -1 else ""

        self.eos = text_of(llama.token_eos())
        template = llama.metadata.get("tokenizer.chat_template") or _CHATML
        self.formatter = Jinja2ChatFormatter(
            template=template, eos_token=self.eos, bos_token=text_of(llama.token_bos())
        )

    def run(self, work: Callable[[], _T]) -> _T:
        """`work()` on this context's own thread (see the module docstring); blocks until it is done."""
        return self.decoder.run(work)

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        formatted = self.formatter(messages=messages)  # type: ignore[arg-type]
        tokens: list[int] = self.llama.tokenize(formatted.prompt.encode("utf-8"), add_bos=False, special=True)
        return tokens


_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class _ContextPool:
    """`size` llama.cpp contexts on one model file, each used by one thread at a time; loaded on
    first use. Shared by every LocalProvider of the process with the same model and options."""

    def __init__(self, path: Path, options: PoolOptions):
        self.path = path
        self.options = options
        self.size = max(1, options.contexts)
        self._free: queue.Queue[_Context] = queue.Queue()
        self._loaded = 0
        self._load_lock = threading.Lock()

    def _load(self) -> _Context:
        try:
            _keep_stdio()
            from llama_cpp import Llama
        except ImportError:
            raise ProviderError(
                "local", "config", f"llama-cpp-python is not installed: {INSTALL_HINT}"
            ) from None
        if not self.path.is_file():
            raise ProviderError(
                "local", "config", f"model file {str(self.path)!r} not found ([llm.local] model_path)"
            )
        kwargs: dict[str, Any] = {"n_ctx": self.options.n_ctx, "n_gpu_layers": self.options.n_gpu_layers}
        if self.options.n_threads:
            kwargs["n_threads"] = self.options.n_threads
        try:
            llama = Llama(model_path=str(self.path), verbose=False, **kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderError(
                "local",
                "config",
                f"cannot load {str(self.path)!r} as a GGUF model ({exc}); check [llm.local] model_path",
            ) from None
        return _Context(llama)

    def acquire(self, cancel: threading.Event) -> _Context:
        while True:
            try:
                return self._free.get_nowait()
            except queue.Empty:
                pass
            with self._load_lock:
                if self._loaded < self.size:
                    context = self._load_on_own_thread()
                    self._loaded += 1
                    return context
            try:
                return self._free.get(timeout=0.05)
            except queue.Empty:
                if cancel.is_set():
                    raise GenerationStopped from None

    def _load_on_own_thread(self) -> _Context:
        """A new context, loaded on the thread that will run all of its decoding."""
        decoder = _DecodeThread(f"llama-decode {self.path.name}")
        try:
            context = decoder.run(self._load)
        except BaseException:
            decoder.stop()
            raise
        context.decoder = decoder
        return context

    def release(self, context: _Context) -> None:
        self._free.put(context)

    def close(self) -> None:
        """Free the contexts not in use now; a later call loads them again."""
        while True:
            try:
                context = self._free.get_nowait()
            except queue.Empty:
                return
            with self._load_lock:
                self._loaded -= 1
            close = getattr(context.llama, "close", None)  # llama-cpp-python >= 0.2.58
            if close is not None:
                context.decoder.run(close)
            context.decoder.stop()


_POOLS: dict[tuple[Any, ...], _ContextPool] = {}
_POOLS_LOCK = threading.Lock()


def _pool_for(path: Path, options: PoolOptions) -> _ContextPool:
    key = (str(path.resolve()), options.n_ctx, options.n_threads, options.n_gpu_layers, options.contexts)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            if not _POOLS:
                atexit.register(close_pools)
            pool = _POOLS[key] = _ContextPool(path, options)
        return pool


def close_pools() -> None:
    """Close every loaded model now (registered with atexit; see the module docstring)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:
        pool.close()
