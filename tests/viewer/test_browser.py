"""A real browser (headless Chromium) loads a run report from a file with the network unreachable:
the page builds the expected document (question as text, no script element, timeline, graphs and
waterfall as SVG) and renders to a screenshot.

Needs Debian's `chromium` (installed by .ci/run); without it the test is skipped, unless CI=true."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

from reasonkit.protocol.loader import load_registry
from reasonkit.viewer import render_page
from tests.programs import require_program
from tests.viewer.runs import HOSTILE, made_runs, store_trace
from tests.viewer.test_page import parse

BROWSER_TIMEOUT_S = 90


def chromium() -> str:
    """Debian's `chromium` (or `chromium-browser` elsewhere); missing: skipped, or failed under CI."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or require_program("chromium", "apt-get install --no-install-recommends chromium")


def run_browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(),
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--proxy-server=127.0.0.1:9",  # nothing may be fetched: every request would fail
        *args,
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, env=env, check=False
    )


def test_a_browser_renders_the_report(tmp_path):
    data = tmp_path / "data"
    ids = made_runs(data)
    page = tmp_path / "report.html"
    trace = store_trace(data, ids["incomplete"])
    trace["inputs"]["argument"] = f"Is this safe? {HOSTILE}"
    page.write_text(render_page(trace, registry=load_registry([])), encoding="utf-8")

    dom = run_browser(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    tags = parse(dom.stdout)
    text = "".join(tags.text)
    assert f"Is this safe? {HOSTILE}" in text  # the hostile question is text in the built document
    assert "script" not in tags.tags and "img" not in tags.tags
    assert tags.tags.count("svg") == 3  # timeline, waterfall, step graph (one entry)
    for shown in (
        "Timeline",
        "Step graph",
        "why: skipped: step 'fallacies' did not produce output",
        "degraded",
    ):
        assert shown in text
    assert tags.tags.count("details") >= 4 and "summary" in tags.tags

    shot = tmp_path / "shot.png"
    result = run_browser(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1200, 1600) and len(png) > 20_000  # a real rendering, not a blank page
