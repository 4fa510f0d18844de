"""The local model is closed at exit, before interpreter teardown (reasonkit/providers/llama_pool.py):
left to teardown, `Llama.__del__` printed `Exception ignored in: <function Llama.__del__ ...>` on
every stdio or HTTP shutdown and after `rk think`. The close path is tested with stand-in models
(no llama.cpp needed); the real model's shutdown is in the real-model tier."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from reasonkit.providers import llama_pool
from reasonkit.providers.local import LocalOptions

REPO = Path(__file__).resolve().parents[2]


class FakeLlama:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class FakeContext:
    def __init__(self) -> None:
        self.llama = FakeLlama()


@pytest.fixture
def pool(monkeypatch, tmp_path):
    monkeypatch.setattr(llama_pool, "_POOLS", {})
    registered: list[Any] = []
    monkeypatch.setattr(llama_pool.atexit, "register", registered.append)
    made = llama_pool._pool_for(tmp_path / "m.gguf", LocalOptions(contexts=2))
    monkeypatch.setattr(made, "_load", FakeContext)
    monkeypatch.setattr(made, "registered", registered, raising=False)  # what atexit was given
    return made


def test_the_first_pool_registers_the_close_at_exit(pool, tmp_path):
    assert pool.registered == [llama_pool.close_pools]
    llama_pool._pool_for(tmp_path / "other.gguf", LocalOptions())
    assert pool.registered == [llama_pool.close_pools]  # once per process


def test_closing_frees_idle_contexts_and_skips_one_in_use(pool):
    never = threading.Event()
    idle, busy = pool.acquire(never), pool.acquire(never)
    pool.release(idle)
    llama_pool.close_pools()
    assert idle.llama.closed == 1 and busy.llama.closed == 0  # a generating thread keeps its own
    assert pool._loaded == 1
    again = pool.acquire(never)  # a later call loads a fresh context
    assert again is not idle and pool._loaded == 2


def test_a_real_exit_closes_the_models_before_teardown(tmp_path):
    script = (
        "import sys, threading\n"
        "from pathlib import Path\n"
        "from reasonkit.providers import llama_pool\n"
        "from reasonkit.providers.local import LocalOptions\n"
        "class Llama:\n"
        "    def close(self):\n"
        "        sys.stderr.write('closed while the interpreter is whole\\n')\n"
        "class Context:\n"
        "    def __init__(self):\n"
        "        self.llama = Llama()\n"
        "pool = llama_pool._pool_for(Path('m.gguf'), LocalOptions())\n"
        "pool._load = Context\n"
        "pool.release(pool.acquire(threading.Event()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "closed while the interpreter is whole\n"
