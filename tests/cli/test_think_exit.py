"""`rk think` exits within a second of printing its result, after a normal run and after Ctrl-C
(it once took 8 s and 10 s): nothing it started (worker threads, the store, executors) holds the
interpreter open. Real subprocesses against the fake LLM server."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

from tests.fakes.fake_llm import schema_filler

EXIT_WITHIN = 1.0


def _start(fake_llm, tmp_path, *args: str) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "HOME": str(tmp_path),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "reasonkit.cli", "think", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


class _Output:
    """Reads a pipe in a thread, noting when its last byte arrived."""

    def __init__(self, pipe):
        self.text, self.last = "", time.monotonic()
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe) -> None:
        for chunk in iter(lambda: pipe.read(1), ""):
            self.text += chunk
            self.last = time.monotonic()


def _exit_delay(proc: subprocess.Popen[str], out: _Output) -> float:
    proc.wait(timeout=60)
    exited = time.monotonic()
    out.thread.join(timeout=5)
    return exited - out.last


def _close(proc: subprocess.Popen[str], *outputs: _Output) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)
    for output in outputs:
        output.thread.join(timeout=5)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def test_think_exits_within_a_second_of_its_result(fake_llm, tmp_path):
    fake_llm.default = schema_filler
    proc = _start(fake_llm, tmp_path, "--profile", "quick", "--quiet", "q")
    out, err = _Output(proc.stdout), _Output(proc.stderr)
    try:
        delay = _exit_delay(proc, out)
    finally:
        _close(proc, out, err)
    assert proc.returncode == 0, err.text
    assert out.text.startswith("Answer"), out.text
    assert delay < EXIT_WITHIN, f"exited {delay:.1f}s after printing its result"


def test_think_exits_within_a_second_after_ctrl_c(fake_llm, tmp_path):
    def handler(req):
        reply = schema_filler(req)
        if "Reconstruct the argument below" in req.last_user_text:
            return dataclasses.replace(reply, delay=60)  # LaserLogic never answers in time
        return reply

    fake_llm.default = handler
    proc = _start(fake_llm, tmp_path, "--profile", "quick", "--quiet", "--format", "json", "q")
    out, err = _Output(proc.stdout), _Output(proc.stderr)
    try:
        deadline = time.monotonic() + 60
        while not any("Reconstruct the argument below" in q.last_user_text for q in fake_llm.requests):
            assert time.monotonic() < deadline and proc.poll() is None, err.text
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        delay = _exit_delay(proc, out)
    finally:
        _close(proc, out, err)
    assert proc.returncode == 130, err.text
    assert '"status": "cancelled"' in out.text
    assert delay < EXIT_WITHIN, f"exited {delay:.1f}s after printing its partial result"


def test_a_thread_a_cancelled_call_left_behind_does_not_hold_the_exit(tmp_path):
    """After Ctrl-C the local model's worker thread finishes its token loop on its own; the
    interpreter used to wait for it (non-daemon) before exiting. `run_and_exit` runs the atexit
    handlers, flushes, and ends the process without waiting."""
    script = (
        "import atexit, sys, threading, time\n"
        "from reasonkit.cli.common import run_and_exit\n"
        "def command():\n"
        "    threading.Thread(target=time.sleep, args=(30,)).start()\n"
        "    atexit.register(lambda: sys.stderr.write('atexit ran\\n'))\n"
        "    print('result', end='')\n"
        "    sys.exit(3)\n"
        "run_and_exit(command)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 10  # well below the thread's 30 s, start-up included
    assert (done.returncode, done.stdout, done.stderr) == (3, "result", "atexit ran\n")
