"""The shell examples in README.md and docs/*.md run as written (those that need no network).

Which examples run:
- every command of a fenced `sh`/`bash` block preceded by `<!-- runnable -->`;
- the commands listed in ALLOWED below, found verbatim in blocks that also hold examples that cannot
  run here (placeholders, servers that never exit, installs). The test fails if one of them is no
  longer in the docs, so the list cannot rot.

Each command runs with bash in its own temporary HOME (no user config, no user data) with the
installed `rk` first on PATH. A provider, where one is needed, is the fake LLM server on 127.0.0.1
(tests/fakes): `ANTHROPIC_API_KEY` is a test key and `ANTHROPIC_BASE_URL` points at the fake; for the
MCP Inspector, which passes the server only the variables given with `-e`, the fake's address is in
`~/.config/reasonkit/config.toml` instead. `npx @modelcontextprotocol/inspector` is the Inspector
that `.ci/run` installs in tools/node (never a download).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.fake_llm import schema_filler
from tests.programs import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NODE_BIN = ROOT / "tools" / "node" / "node_modules" / ".bin"
INSPECTOR = "npx @modelcontextprotocol/inspector"
NODE_INSTALL = (
    "mkdir -p tools/node && cd tools/node && echo '{\"private\": true}' > package.json && "
    "npm i --no-audit --no-fund node@22 @modelcontextprotocol/inspector"
)

# (file, command) run from blocks that also hold examples that cannot run here.
ALLOWED = [
    ("README.md", 'rk think "question"'),
    ("README.md", "rk profiles list"),
    ("README.md", "rk config init"),
    ("README.md", "rk config show"),
    ("README.md", "rk mcp-config claude-desktop"),
    ("docs/protocol-authoring.md", "rk protocols list"),
    ("docs/protocol-authoring.md", "rk protocols validate"),
]
# What must be among the examples that run (the list).
REQUIRED = [
    "rk protocols list",
    "rk protocols validate",
    "rk config init",
    "rk config show",
    "rk mcp-config claude-desktop",
    f"{INSPECTOR} --cli rk serve-mcp --method tools/list",
]


@dataclass(frozen=True)
class Example:
    file: str
    line: int
    command: str
    runnable_block: bool

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def shell_examples(path: Path, root: Path = ROOT) -> list[Example]:
    """Every command of every sh/bash block: `\\` continuations joined, `$ ` prompts and trailing
    `# comments` removed; output lines of a `$ `-prompted block are left out."""
    rel = path.relative_to(root).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(sh|bash|shell|console)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        marked = i > 0 and lines[i - 1].strip() == "<!-- runnable -->"
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append((i + 1, lines[i]))
            i += 1
        prompted = any(text.startswith("$ ") for _, text in body)
        pending, start = "", 0
        for number, text in body:
            if prompted and not pending:
                if not text.startswith("$ "):
                    continue  # output shown after a prompt
                text = text[2:]
            if not pending:
                start = number
            if text.rstrip().endswith("\\"):
                pending += text.rstrip()[:-1] + " "
                continue
            command = strip_comment(pending + text).strip()
            pending = ""
            if command:
                found.append(Example(rel, start, re.sub(r"\s+", " ", command), marked))
        i += 1
    return found


def strip_comment(line: str) -> str:
    """`cmd   # comment` -> `cmd` (a `#` outside quotes, after whitespace)."""
    quote = ""
    for pos, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (pos == 0 or line[pos - 1].isspace()):
            return line[:pos]
    return line


ALL = [e for path in DOCS for e in shell_examples(path)]
RUN = [e for e in ALL if e.runnable_block or (e.file, e.command) in ALLOWED]


def test_the_allowed_examples_are_still_in_the_docs():
    present = {(e.file, e.command) for e in ALL}
    missing = [a for a in ALLOWED if a not in present]
    assert not missing, f"examples no longer in the docs (update ALLOWED): {missing}"
    commands = {e.command for e in RUN}
    assert all(r in commands for r in REQUIRED), [r for r in REQUIRED if r not in commands]


def test_the_extractor_joins_continuations_and_drops_prompts_and_comments(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text(
        "<!-- runnable -->\n```sh\nrk a \\\n    --b 'c # d'   # note\n\n# only a comment\n```\n"
        "```sh\n$ rk e\nprinted output\n$ rk f\n```\n"
    )
    found = [(e.command, e.runnable_block) for e in shell_examples(doc, tmp_path)]
    assert found == [("rk a --b 'c # d'", True), ("rk e", False), ("rk f", False)]


def _node_tools() -> Path:
    """A folder with an `npx` that runs the Inspector installed in tools/node (Node 22) and
    nothing else, so that an example can never download a package."""
    if not (NODE_BIN / "node").exists() or not (NODE_BIN / "mcp-inspector").exists():
        skip_or_fail(
            f"NOT TESTED: the MCP Inspector (Node >= 22) is not in tools/node; install with: {NODE_INSTALL}"
        )
    version = subprocess.run(
        [str(NODE_BIN / "node"), "--version"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 22:
        skip_or_fail(
            f"NOT TESTED: tools/node has Node {version}, >= 22 is needed; install with: {NODE_INSTALL}"
        )
    return NODE_BIN


@pytest.mark.parametrize("example", RUN, ids=[e.id for e in RUN])
def test_example_runs(example: Example, tmp_path, fake_llm):
    fake_llm.default = schema_filler
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = [str(Path(sys.executable).parent), str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"]
    env = {
        "HOME": str(home),
        "PATH": os.pathsep.join(path),
        "LANG": "C.UTF-8",
        "ANTHROPIC_API_KEY": "sk-ant-docs-example-000",
        "ANTHROPIC_BASE_URL": fake_llm.anthropic_base_url,
        "LOCAL_MODEL_AUTO": "false",
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }
    if example.command.startswith(INSPECTOR):
        node = _node_tools()
        shim = bin_dir / "npx"
        shim.write_text(
            "#!/bin/sh\n"
            'if [ "$1" = "@modelcontextprotocol/inspector" ]; then shift; '
            f'exec "{node}/mcp-inspector" "$@"; fi\n'
            'echo "npx (test shim): only @modelcontextprotocol/inspector is available" >&2; exit 127\n'
        )
        shim.chmod(0o755)
        env["PATH"] = os.pathsep.join([str(node), *path])
        env.update(NO_UPDATE_NOTIFIER="1", npm_config_update_notifier="false", NODE_NO_WARNINGS="1")
        # The Inspector passes the server only PATH, HOME and a few more (plus `-e`): the fake
        # provider's address goes into the user's config file, as a user would put a real one.
        config = home / ".config" / "reasonkit" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(
            f'[llm.providers.anthropic]\napi_base = "{fake_llm.anthropic_base_url}"\nmax_retries = 0\n'
            "[llm.local]\nauto = false\n"
        )
    r = subprocess.run(
        ["bash", "-c", example.command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, f"{example.id}: {example.command}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr
    if "tools/call" in example.command:
        assert '"isError": true' not in r.stdout, r.stdout
        assert '"status": "complete"' in r.stdout, r.stdout
