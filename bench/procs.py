"""Subprocess helpers shared by the benchmarks: the lean fake OpenAI server as a child process, free
ports, and per-process memory and CPU from /proc (Linux; elsewhere the numbers are None)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench.common import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment with bytecode caching on (as for an installed package) and no
    ReasonKit / provider settings leaking in from the caller's shell."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "REASONKIT_",
                "OPENAI_",
                "ANTHROPIC_",
                "OPENROUTER_",
                "LLM_",
                "ENABLE_",
                "LOG_",
                "RUST_LOG",
                "REDIS_",
                "SERVER_",
                "METRICS_",
            )
        )
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------- /proc
def status_kb(pid: int, key: str) -> int | None:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM, ...); None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_mb(pid: int) -> float | None:
    kb = status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mb(pid: int) -> float | None:
    """The process's resident-set high-water mark (VmHWM) since start or the last `reset_peak`."""
    kb = status_kb(pid, "VmHWM")
    return None if kb is None else kb / 1024


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/PID/clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------- fake server
class FakeOpenAI:
    """`python -m bench.fake_openai` as a child process (see bench/fake_openai.py)."""

    def __init__(
        self,
        latency: float = 0.0,
        fail_every: int = 0,
        content: str | None = None,
        model: str = "gpt-4.1-mini",
    ):
        cmd = [
            sys.executable,
            "-m",
            "bench.fake_openai",
            "--latency",
            str(latency),
            "--fail-every",
            str(fail_every),
            "--model",
            model,
        ]
        if content is not None:
            cmd += ["--content", content]
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            self.proc.kill()
            raise RuntimeError(f"bench.fake_openai did not start: {line!r} {err[-500:]}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        # Drain stderr so the child never blocks on a full pipe.
        self._drain = threading.Thread(target=self.proc.stderr.read, daemon=True)  # type: ignore[union-attr]
        self._drain.start()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = json.dumps(body or {}).encode() if method == "POST" else None
            conn.request(method, path, body=data, headers={"content-type": "application/json"})
            resp = conn.getresponse()
            return json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    def configure(self, **cfg: Any) -> None:
        self._call("POST", "/__bench__/config", cfg)

    def reset(self) -> None:
        self._call("POST", "/__bench__/reset")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/__bench__/stats")

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._drain.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
