"""tests/programs.py: a missing system program skips a test with a reason naming what to install,
and fails it when CI is set."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.programs import require_program

MISSING = "reasonkit-no-such-program"


@pytest.mark.parametrize("ci", [None, "", "0", "false"])
def test_missing_program_skips_with_the_install_hint(monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_program(MISSING, "apt-get install -y something")
    assert f"`{MISSING}` is not installed" in str(skipped.value)
    assert "apt-get install -y something" in str(skipped.value)


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_missing_program_fails_under_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as failed:
        require_program(MISSING, "apt-get install -y something")
    assert "apt-get install -y something" in str(failed.value) and "CI is set" in str(failed.value)


def test_present_program_is_found_first_in_the_search_folders(monkeypatch):
    monkeypatch.setenv("CI", "true")
    python = Path(sys.executable)
    assert require_program(python.name, "-", search=[python.parent]) == str(python)
    assert Path(require_program("sh", "-")).name == "sh"  # then PATH
