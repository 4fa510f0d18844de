"""Sampling profiles of server subprocesses with py-spy (installed into .bench-venv by
bench/requirements.txt; attaching needs ptrace rights: root, or kernel.yama.ptrace_scope = 0).

`--gil` samples only the thread holding the interpreter lock: with one event loop per server
process, that is the CPU time that queues every other request. Samples are folded into
- areas: self time by top-level package (reasonkit by subpackage), and
- functions: self time of the hottest functions, and
- callers: each sample charged to the innermost ReasonKit function on its stack (the ReasonKit code
  that caused the work, whether its own or in a library it called).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<path>[^()]*?):(?P<line>\d+)\)$")
# Frames every sample of a server shares (the CLI and the event loop's entry): not informative.
_DRIVER_FUNCS = frozenset(
    {"<module>", "main", "serve_mcp", "serve_http", "serve_stdio", "run", "invoke", "__call__", "new_func"}
)


def pyspy_binary() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    return shutil.which("py-spy")


class Recording:
    """`with Recording(pid) as rec: <load>`; then `rec.fold()` (or `rec.error`)."""

    def __init__(self, pid: int, rate: int = 500):
        self.pid, self.rate = pid, rate
        self.error: str | None = None
        self.out = Path(tempfile.mkdtemp(prefix="rk-bench-spy-")) / "profile.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Recording:
        spy = pyspy_binary()
        if spy is None:
            self.error = "py-spy is not installed in this environment"
            return self
        cmd = [
            spy,
            "record",
            "-p",
            str(self.pid),
            "-r",
            str(self.rate),
            "-f",
            "raw",
            "-o",
            str(self.out),
            "--nonblocking",
            "--gil",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # py-spy needs a moment to attach; a failure to attach shows as an early exit.
        try:
            self.proc.wait(timeout=0.7)
            err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace").strip()
            why = err.splitlines()[-1] if err else f"exit {self.proc.returncode}"
            self.error = f"py-spy could not attach: {why}"
            self.proc = None
        except subprocess.TimeoutExpired:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if not self.out.exists() and self.error is None:
            self.error = "py-spy wrote no profile"

    def fold(self, top: int = 10) -> dict[str, Any]:
        if self.error:
            return {"error": self.error}
        try:
            text = self.out.read_text(errors="replace")
        except OSError as exc:
            return {"error": f"no profile: {exc}"}
        return fold_raw(text, top)


def _area(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    if not parts or not parts[0]:
        return "<unknown>"
    if parts[0] == "reasonkit":
        return "/".join(parts[:2]).removesuffix(".py").replace("/", ".")
    top = parts[0].removesuffix(".py")
    if top in (
        "context",
        "trace",
        "opentelemetry",
    ):  # py-spy shortens opentelemetry's paths to its subpackages
        return "opentelemetry (context, trace)"
    if top in (
        "asyncio",
        "selectors",
        "threading",
        "queue",
        "json",
        "contextlib",
        "sqlite3",
        "concurrent",
        "weakref",
        "functools",
        "typing",
        "enum",
        "socket",
        "ssl",
    ):
        return f"stdlib {top}"
    return top


def fold_raw(text: str, top: int = 10) -> dict[str, Any]:
    """py-spy's raw (collapsed) output -> areas and functions with their share of the samples."""
    total = 0
    self_fn: Counter[str] = Counter()
    area: Counter[str] = Counter()
    incl_rk: Counter[str] = Counter()
    detail: dict[str, Counter[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        stack, _, n_txt = line.rpartition(" ")
        try:
            n = int(n_txt)
        except ValueError:
            continue
        total += n
        frames = stack.split(";")
        m = _FRAME.match(frames[-1])
        if m:
            self_fn[f"{m['func']} ({m['path']}:{m['line']})"] += n
            area[_area(m["path"])] += n
        else:
            area["<unknown>"] += n
        # Attribute the sample to the innermost ReasonKit frame on the stack: the ReasonKit code that
        # caused this work (its own, or the library it called); no such frame: server framework.
        owner = "no ReasonKit frame (MCP SDK transport, uvicorn, h11, event loop)"
        for fr in reversed(frames):
            fm = _FRAME.match(fr)
            if fm and fm["path"].startswith("reasonkit/") and fm["func"] not in _DRIVER_FUNCS:
                owner = f"{fm['func']} ({fm['path']})"
                break
        incl_rk[owner] += n
        leaf = f"{m['func']} ({m['path']})" if m else "<unknown>"
        detail.setdefault(owner, Counter())[leaf] += n
    if not total:
        return {"error": "the profile has no samples"}

    def pct(c: Counter[str], k: int) -> list[dict[str, Any]]:
        return [{"name": name, "pct": 100 * v / total} for name, v in c.most_common(k)]

    callers = pct(incl_rk, top)
    for c in callers[:4]:  # what the biggest callers' samples were doing
        c["leaves"] = pct(detail[c["name"]], 4)
    return {
        "samples": total,
        "areas": pct(area, top + 5),
        "self": pct(self_fn, top),
        "by_reasonkit_caller": callers,
    }
