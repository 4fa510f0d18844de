"""Small helpers every part of the benchmarks uses: the repository root, progress callbacks and
the load average."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A progress callback that says nothing."""
    return None


def say(msg: str) -> None:
    """The command line's progress callback: `[bench] msg` on stderr."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def load_avg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, rounded; None where the platform has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
