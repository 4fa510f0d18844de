"""Parsing and process helpers shared by the deployment tests."""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.deploy.conftest import REPO

# --------------------------------------------------------------------------------------- Dockerfile


@dataclass
class Instruction:
    keyword: str
    value: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.value for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(path: Path = REPO / "Dockerfile") -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages). Joins continuation lines, drops comments."""
    logical: list[str] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1].strip() + " "
            continue
        logical.append((buf + line).strip())
        buf = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", value.strip(), re.I)
            assert m, line
            base = re.sub(r"\$\{(\w+)\}", lambda g: args.get(g.group(1), g.group(0)), m.group(1))
            stages.append(Stage(base, m.group(2)))
        elif not stages:
            assert keyword == "ARG", f"only ARG may come before FROM: {line}"
            name, _, default = value.partition("=")
            args[name.strip()] = default.strip()
        else:
            stages[-1].instructions.append(Instruction(keyword, value.strip()))
    return args, stages


def exec_form(value: str) -> list[str]:
    """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD."""
    return json.loads(value)


def env_pairs(value: str) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in shlex.split(value))


# --------------------------------------------------------------------------------------- rk flags


def check_serve_mcp_args(args: list[str]) -> dict[str, Any]:
    """Parse `serve-mcp ...` arguments with the real click command; returns the parsed params.
    Fails on an unknown flag or a bad value, exactly as `rk` would."""
    from reasonkit.cli.server_commands import serve_mcp

    assert args and args[0] == "serve-mcp", args
    ctx = serve_mcp.make_context("serve-mcp", list(args[1:]))
    return dict(ctx.params)


# --------------------------------------------------------------------------------------- MCP over HTTP

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def _messages(resp: httpx.Response) -> list[dict[str, Any]]:
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        return [
            json.loads(line[5:])
            for line in resp.text.splitlines()
            if line.startswith("data:") and line[5:].strip()
        ]
    return [resp.json()] if resp.content else []


def mcp_tool_call(
    base_url: str, token: str | None, tool: str, arguments: dict[str, Any], timeout: float = 60
) -> dict[str, Any]:
    """One tool call over streamable HTTP the way a 2025-06-18 client does it (stateless server:
    no session id), with a bearer token when one is given. Returns the JSON-RPC result."""
    headers = dict(HEADERS)
    if token:
        headers["authorization"] = f"Bearer {token}"
    with httpx.Client(timeout=timeout) as http:
        init = http.post(
            f"{base_url}/mcp",
            headers=headers,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "deploy-test", "version": "1"},
                },
            },
        )
        assert init.status_code == 200, init.text
        headers["mcp-protocol-version"] = "2025-06-18"
        call = http.post(
            f"{base_url}/mcp",
            headers=headers,
            json={
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            },
        )
        assert call.status_code == 200, call.text
        replies = [m for m in _messages(call) if m.get("id") == 2]
        assert replies, call.text
        assert "result" in replies[0], replies[0]
        return replies[0]["result"]


def wait_ready(base_url: str, proc: Any, log: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"server exited with {proc.returncode}:\n{log()}"
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"server not ready after {timeout}s:\n{log()}"
        time.sleep(0.1)


# --------------------------------------------------------------------------------------- sandbox


def sandbox_argv(argv: list[str], env: dict[str, str], writable: list[Path], uid: int, gid: int) -> list[str]:
    """argv as uid:gid in a private mount namespace where `/` is read-only, the `writable`
    directories stay writable and /tmp is a fresh tmpfs: what `docker run --read-only --tmpfs /tmp
    -v data:/app/data` or systemd's ProtectSystem=strict + ReadWritePaths= + PrivateTmp= give."""
    import shlex

    steps = [f"mount --bind {shlex.quote(str(d))} {shlex.quote(str(d))}" for d in writable]
    steps += [
        "mount -o remount,bind,ro /",
        "mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp",
        f"exec setpriv --reuid={uid} --regid={gid} --clear-groups env -i "
        + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
        + " "
        + " ".join(shlex.quote(a) for a in argv),
    ]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", " && ".join(steps)]


def require_sandbox() -> None:
    import os
    import shutil
    import subprocess

    from tests.deploy.conftest import fail_or_skip

    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        fail_or_skip(
            "NOT VALIDATED: running as another uid on a read-only root needs root, "
            "unshare and setpriv (util-linux)"
        )
    probe = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -o remount,bind,ro / && ! touch /.rk-probe 2>/dev/null",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        fail_or_skip(
            f"NOT VALIDATED: cannot make a private read-only mount namespace here: {probe.stderr.strip()}"
        )
