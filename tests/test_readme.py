"""README's two commands are the truth: `.ci/run` reads the test command from README.md (the fenced
block after `<!-- test-command`) and runs it as written, so the two cannot drift. These tests check the
marker, that `.ci/run`'s own extraction yields exactly that one command, and that the quick-start and
test commands are well-formed shell that names real extras and markers."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"


def block_after(marker: str, text: str) -> list[str]:
    """The lines of the first fenced block after the line starting with `marker`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    assert lines[start + 1].startswith("```"), f"{marker} must come right before a fenced block"
    end = next(i for i in range(start + 2, len(lines)) if lines[i].startswith("```"))
    return lines[start + 2 : end]


def ci_extraction() -> str:
    """`.ci/run`'s extraction and its one-command check, cut out of the script itself."""
    script = CI_RUN.read_text()
    start = script.index("readme_test_command() {")
    end = script.index('echo "+ $test_command"')
    return script[start:end] + 'printf "%s" "$test_command"\n'


def run_extraction(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + ci_extraction()],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_readme_marks_both_commands():
    text = README.read_text()
    assert text.count("<!-- test-command") == 1 and text.count("<!-- quick-start") == 1
    assert len(block_after("<!-- test-command", text)) == 1
    assert len(block_after("<!-- quick-start", text)) == 1


def test_ci_run_sets_ci_and_runs_the_readme_command():
    script = CI_RUN.read_text()
    assert re.search(r"^export CI=true$", script, re.M)
    assert re.search(r'^eval "\$test_command"$', script, re.M)
    # no test run of its own that could drift from README
    assert not re.search(r"^python -m pytest", script, re.M)
    # the copy in its comment, for readers, is README's command
    copy = re.search(r"^#   README test command: (.+)$", script, re.M)
    assert copy is not None and copy.group(1) == block_after("<!-- test-command", README.read_text())[0]


def test_ci_run_extracts_exactly_the_readme_test_command():
    r = run_extraction(ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout == block_after("<!-- test-command", README.read_text())[0]
    assert "\n" not in r.stdout


@pytest.mark.parametrize("body", ["", "cmd one\ncmd two\n"])
def test_ci_run_refuses_anything_but_one_command(tmp_path, body):
    (tmp_path / "README.md").write_text(f"<!-- test-command -->\n```bash\n{body}```\n")
    r = run_extraction(tmp_path)
    assert r.returncode == 2 and "exactly one command line" in r.stderr


def commands(line: str) -> list[list[str]]:
    """The simple commands of an `a && b && c` line, each as shell words."""
    assert not set("|;") & set(line), f"expected a plain `a && b` chain: {line}"
    return [shlex.split(part) for part in line.split(" && ")]


def extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["optional-dependencies"])


def test_readme_commands_are_well_formed_shell():
    text = README.read_text()
    for marker in ("<!-- quick-start", "<!-- test-command"):
        line = block_after(marker, text)[0]
        r = subprocess.run(["bash", "-n", "-c", line], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (marker, r.stderr)


def test_readme_test_command_installs_dev_and_runs_both_tiers():
    cmds = commands(block_after("<!-- test-command", README.read_text())[0])
    assert cmds[0] == ["python3", "-m", "venv", ".venv"] and cmds[1] == [".", ".venv/bin/activate"]
    assert cmds[2] == ["pip", "install", "-e", ".[dev]"] and "dev" in extras()
    assert cmds[3] == ["python", "-m", "pytest", "-q"]
    assert cmds[4] == ["python", "-m", "pytest", "-q", "-m", "realmodel"]
    pytest_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("realmodel:") for m in pytest_cfg["markers"])


def test_readme_quick_start_installs_local_and_thinks():
    cmds = commands(block_after("<!-- quick-start", README.read_text())[0])
    assert cmds[0] == ["python3", "-m", "venv", ".venv"] and cmds[1] == [".", ".venv/bin/activate"]
    assert cmds[2] == ["pip", "install", ".[local]"] and "local" in extras()
    assert cmds[3][:2] == ["rk", "think"] and len(cmds[3]) == 3 and cmds[3][2].strip()
    from click.testing import CliRunner

    from reasonkit.cli import main

    assert "think" in main.commands  # the quick start's command exists
    r = CliRunner().invoke(main, ["think", "--help"])
    assert r.exit_code == 0


def timing_notes(text: str) -> str:
    """README's notes on how long its two commands take: from the quick start to "## Using it"."""
    return text[text.index("<!-- quick-start") : text.index("## Using it")]


def test_readme_timings_are_measured_ranges_with_what_they_depend_on():
    # One figure from a quiet machine misleads a newcomer on a busy laptop: every time given is a
    # measured range, and the notes say what moves it.
    notes = re.sub(r"\s+", " ", timing_notes(README.read_text()))
    unit = r"(?:s|seconds?|min|minutes?)\b"
    durations = re.findall(rf"(?<![\d.\-])(\d+(?:\.\d+)?(?:\s*(?:-|to)\s*\d+(?:\.\d+)?)?)\s*{unit}", notes)
    assert durations, "no timings found"
    # a range is "a-b", "a to b", or "from a to over b" (b: a lower bound, still running then)
    bounded = re.findall(rf"\bover (\d+(?:\.\d+)?)\s*{unit}", notes)
    single = [d for d in durations if not re.search(r"-|to", d) and d not in bounded]
    assert not single, f"timings without a range: {single}"
    for factor in ("cores", "load", "cached wheel"):
        assert factor in notes, f"the timings do not say they depend on {factor}"
