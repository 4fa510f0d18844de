"""shellcheck on every shell script of the repository (.ci/run, deploy/lxc/install.sh, ...)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.deploy.conftest import REPO, require_tool

SHEBANG = re.compile(rb"^#!\s*\S*(?:/|env\s+)(?:ba|da|k)?sh\b")


def shell_scripts() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    out = []
    for rel in filter(None, listed):
        parts = Path(rel).parts
        # local environments (virtualenvs, node installs) are not ours
        if (
            any(p == "node_modules" for p in parts)
            or (parts[0].startswith(".") and parts[0] != ".ci")
            or parts[:2] == ("bench", ".node")
        ):
            continue
        path = REPO / rel
        if not path.is_file():
            continue
        if path.suffix == ".sh" or SHEBANG.match(path.read_bytes()[:64]):
            out.append(path)
    return sorted(out)


def test_the_scripts_are_found():
    found = {p.relative_to(REPO).as_posix() for p in shell_scripts()}
    assert {".ci/run", "deploy/lxc/install.sh"} <= found


def test_shellcheck():
    shellcheck = require_tool("shellcheck", "Debian package shellcheck")
    scripts = shell_scripts()
    out = subprocess.run(
        [shellcheck, "--severity=style", "--external-sources", *map(str, scripts)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_scripts_are_strict():
    for path in shell_scripts():
        assert "set -euo pipefail" in path.read_text(), path
