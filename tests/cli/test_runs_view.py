"""`rk runs view` and `rk runs show --full`, in subprocesses, on runs made by the run service."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.cli.test_run_commands import rk
from tests.viewer.runs import HOSTILE, made_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data = tmp_path_factory.mktemp("cli") / "data"
    return data, made_runs(data)


def test_view_writes_one_self_contained_report(runs, tmp_path):
    data, ids = runs
    out = tmp_path / "reports" / "run.html"
    r = rk("runs", "--data-dir", str(data), "view", ids["incomplete"][:8], "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert f"run {ids['incomplete']} report written to {out}" in r.stderr and r.stdout == ""
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<svg class="gantt"' in html
    assert "<h4>fallacies " in html and "http://" not in html and "https://" not in html
    assert not list(out.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_view_to_stdout_escapes_the_question(runs):
    data, ids = runs
    r = rk("runs", "view", ids["complete"], "--output", "-", "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in r.stdout and "<script" not in r.stdout
    assert HOSTILE not in r.stdout


def test_view_opens_the_report_in_the_browser(runs, tmp_path):
    data, ids = runs
    seen = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {seen}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "r.html"
    r = rk("runs", "--data-dir", str(data), "view", ids["failed"], "-o", str(out), "--open",
           env={"BROWSER": f"{browser} %s", "DISPLAY": ""})  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert seen.read_text().strip() == out.resolve().as_uri()


def test_view_without_output_writes_to_the_temporary_directory(runs, tmp_path):
    data, ids = runs
    r = rk("runs", "--data-dir", str(data), "view", ids["cancelled"], env={"TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    [report] = tmp_path.glob(f"reasonkit-run-{ids['cancelled']}-*.html")
    assert str(report) in r.stderr


def test_view_temporary_report_is_private_and_never_follows_a_planted_link(runs, tmp_path):
    """Another user of the shared $TMPDIR can neither guess the name, nor read the file (0600), nor
    redirect the write through a symlink at the name the report used to have."""
    data, ids = runs
    rid = ids["cancelled"]
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / f"reasonkit-run-{rid}.html").symlink_to(victim)
    env = {"TMPDIR": str(tmp_path)}
    first = rk("runs", "--data-dir", str(data), "view", rid, env=env)
    second = rk("runs", "--data-dir", str(data), "view", rid, env=env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert victim.read_text() == "keep me"
    reports = sorted(tmp_path.glob(f"reasonkit-run-{rid}-*.html"))
    assert len(reports) == 2  # a new random name each time
    for report in reports:
        assert not report.is_symlink() and stat.S_IMODE(report.stat().st_mode) == 0o600
        assert "<html" in report.read_text(encoding="utf-8").lower()


def test_view_errors_are_clear(runs, tmp_path):
    data, ids = runs
    r = rk("runs", "--data-dir", str(data), "view", "nope")
    assert r.returncode == 1 and "no run 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = rk("runs", "--data-dir", str(data), "view", ids["failed"], "-o", "-", "--open")
    assert r.returncode == 2 and "--open needs a file" in r.stderr
    blocked = tmp_path / "file"
    blocked.write_text("")
    r = rk("runs", "--data-dir", str(data), "view", ids["failed"], "-o", str(blocked / "x.html"))
    assert r.returncode == 1 and "cannot write" in r.stderr and "Traceback" not in r.stderr
    r = rk("runs", "--data-dir", str(tmp_path / "empty"), "view", "abc")
    assert r.returncode == 1 and "no runs recorded yet" in r.stderr


def test_show_full_prints_the_whole_reasoning(runs):
    data, ids = runs
    r = rk("runs", "--data-dir", str(data), "show", ids["incomplete"], "--full", env={"COLUMNS": "90"})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for step in ("extract", "assess", "fallacies", "verdict"):
        assert f"STEP {step} [" in out
    assert "why: skipped: step 'fallacies' did not produce output" in out
    assert "STEP assess [validate]  degraded" in out and "invalid_output" in out
    assert "output:" in out and "    - " in out and "ANSWER" in out and "CONFIDENCE" in out
    assert max(len(line) for line in out.splitlines()) <= 90
    plain = rk("runs", "--data-dir", str(data), "show", ids["incomplete"])
    assert plain.returncode == 0 and "STEP " not in plain.stdout  # the tree is unchanged without --full


def test_view_is_listed_in_help():
    r = rk("runs", "--help")
    assert r.returncode == 0 and "view" in r.stdout
    r = rk("runs", "show", "--help")
    assert r.returncode == 0 and "--full" in r.stdout
