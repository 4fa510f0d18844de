"""Helpers for tests that run `rk serve-mcp` as a subprocess."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx


def rk_command() -> list[str]:
    rk = Path(sys.executable).parent / "rk"
    return [str(rk)] if rk.exists() else [sys.executable, "-m", "reasonkit.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LineReader:
    def __init__(self, stream):
        self.q: queue.Queue[str | None] = queue.Queue()
        self.lines: list[str] = []

        def pump():
            for line in iter(stream.readline, b""):
                self.q.put(line.decode())
            self.q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, pred, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, "stdout closed"
            self.lines.append(line)
            msg = json.loads(line)
            if pred(msg):
                return msg


class HttpServer:
    def __init__(self, env: dict[str, str], *args: str, command: list[str] | None = None):
        """`rk serve-mcp` on a free port (with a side port), or `command --port N *args` (a test
        server such as the conformance fixture)."""
        self.port, self.metrics_port = free_port(), free_port()
        self.stderr = open(Path(env["REASONKIT_DATA_DIR"]).parent / f"http-{self.port}.log", "w+")
        ports = ["--port", str(self.port)]
        if command is None:
            command, ports = [*rk_command(), "serve-mcp"], [*ports, "--metrics-port", str(self.metrics_port)]
        self.proc = subprocess.Popen(
            [*command, *ports, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, self.log()
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)

    def log(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.stderr.close()
