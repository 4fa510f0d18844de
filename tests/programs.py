"""System programs the tests need (redis-server, promtool, shellcheck, systemd-analyze, logrotate,
Node 22 tools ...): one rule for all of them.

Missing, a test is skipped with a reason that names what to install; under CI (`CI` set to anything
but "", "0", "false" or "no"; `.ci/run` exports CI=true) it FAILS instead, because there a missing
program means the install step is broken and a quiet skip would hide it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(message: str) -> NoReturn:
    """Skip the test (a developer machine) or fail it (CI) with `message`."""
    if under_ci():
        pytest.fail(f"{message} [CI is set: a missing program fails the test]", pytrace=False)
    pytest.skip(message)


def require_program(name: str, install_hint: str, *, search: Iterable[Path] = ()) -> str:
    """Absolute path of the executable `name`, looked for in the `search` folders first, then on
    PATH; else skip (fail under CI) with a reason naming `install_hint`."""
    for folder in search:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    skip_or_fail(
        f"NOT TESTED: `{name}` is not installed (install: {install_hint}; `bash .ci/run` installs it)"
    )
