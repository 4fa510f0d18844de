"""Machine information: what the report says about the computer and the checkout."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import REPO, load_avg


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    from reasonkit import __version__

    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "load_avg_at_start": load_avg(),
        "reasonkit": __version__,
        "commit": (commit + (" (with uncommitted changes)" if dirty else "")) if commit else None,
    }


def machine_rows(res: dict[str, Any]) -> list[list[str]]:
    m = res["machine"]
    rows = [
        ["CPU", m["cpu"]],
        ["Cores", f"{m['cores_logical']} logical, {m['cores_usable']} usable by this process"],
        ["Python", f"{m['python']} (`{m['python_executable']}`)"],
        ["Platform", m["platform"]],
        [
            "Load average at start",
            ", ".join(str(x) for x in m["load_avg_at_start"]) if m["load_avg_at_start"] else "n/a",
        ],
    ]
    if res.get("load_avg_at_end"):
        rows.append(["Load average at end", ", ".join(str(x) for x in res["load_avg_at_end"])])
    rows.append(["ReasonKit", f"{m['reasonkit']}" + (f", commit {m['commit']}" if m["commit"] else "")])
    env = res.get("environment") or {}
    if env:
        rows.append(["Bench environment", ", ".join(f"{k} {v}" for k, v in env.items())])
    rows.append(["Date", m["date"]])
    return rows
