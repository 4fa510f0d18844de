"""Terminal injection: escape sequences in a query or a model's reply (OSC 52 clipboard writes,
OSC 0 window titles, CSI screen clears, the 8-bit CSI) reach the terminal as plain text, never as
sequences, in `rk runs show`, `rk runs show --full`, `rk runs list` and `rk think`
(reasonkit/cli/common.echo_untrusted, reasonkit/safetext.strip_controls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.cli.test_run_commands import rk
from tests.cli.test_think import run_rk
from tests.fakes.fake_llm import Reply, schema_filler
from tests.viewer.runs import Misbehaving, make_run

ESCAPES = "\x1b]52;c;cm0gLXJmIH4=\x07 \x1b]0;pwned\x1b\\ \x1b[2J \x9b31m \r"
VISIBLE = "]52;c;cm0gLXJmIH4="  # what is left to see of the clipboard write


def _controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data = tmp_path_factory.mktemp("inject") / "data"
    data.mkdir(parents=True)
    rid = anyio.run(
        make_run,
        data,
        "protocol",
        "laserlogic",
        {"argument": f"All men {ESCAPES} are mortal."},
        Misbehaving(tag=ESCAPES),
    )
    return data, rid


@pytest.mark.parametrize("extra", [[], ["--full"]])
def test_runs_show_prints_no_control_sequences(hostile_run, extra):
    data, rid = hostile_run
    r = rk("runs", "--data-dir", str(data), "show", rid, *extra)
    assert r.returncode == 0, r.stderr
    assert VISIBLE in r.stdout
    assert _controls(r.stdout + r.stderr) == []


def test_runs_list_prints_no_control_sequences(hostile_run):
    data, _ = hostile_run
    r = rk("runs", "--data-dir", str(data), "list")
    assert r.returncode == 0 and _controls(r.stdout + r.stderr) == []


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_think_prints_no_control_sequences(fake_llm, tmp_path, fmt):
    def reply(request: Any) -> Reply:
        filled = schema_filler(request)
        filled.json = {k: f"{v} {ESCAPES}" if isinstance(v, str) else v for k, v in filled.json.items()}
        return filled

    fake_llm.default = reply
    r = run_rk(
        "think",
        "--protocol",
        "laserlogic",
        "--format",
        fmt,
        f"Socrates {ESCAPES} is mortal",
        env_extra={
            "OPENAI_BASE_URL": fake_llm.openai_base_url,
            "HOME": str(tmp_path),
            "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert r.returncode == 0, r.stderr
    assert VISIBLE in r.stdout
    assert _controls(r.stdout + r.stderr) == []
