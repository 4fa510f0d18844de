"""`rk` with a config or protocol file that is not valid UTF-8 (binary, truncated): a clear error or
warning naming the file, never a traceback (issue 11, point 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_think import run_rk
from tests.fakes.fake_llm import schema_filler

BAD_BYTES = b"\xff\xfe\x00garbage"


def _env(tmp_path: Path, config: Path, **extra: str) -> dict[str, str]:
    return {
        "HOME": str(tmp_path),
        "REASONKIT_CONFIG": str(config),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "LOCAL_MODEL_AUTO": "false",
        **extra,
    }


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(BAD_BYTES)
    return cfg


@pytest.fixture
def bad_proto_config(tmp_path: Path) -> Path:
    """A good config whose [protocols] dir holds one undecodable protocol file."""
    protos = tmp_path / "protocols"
    protos.mkdir()
    (protos / "broken.toml").write_bytes(BAD_BYTES)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[protocols]\ndirs = [{json.dumps(str(protos))}]\n")
    return cfg


@pytest.mark.parametrize(
    "args", [("config", "show"), ("protocols", "list"), ("protocols", "validate"), ("think", "why?")]
)
def test_undecodable_config_exits_2_naming_the_file(tmp_path, bad_config, args):
    r = run_rk(*args, env_extra=_env(tmp_path, bad_config))
    assert r.returncode == 2, r.stderr
    assert f"rk: error: {bad_config}: not valid UTF-8 (byte 0xff at position 0" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_protocols_list_skips_an_undecodable_protocol_with_a_warning(tmp_path, bad_proto_config):
    r = run_rk("protocols", "list", env_extra=_env(tmp_path, bad_proto_config))
    assert r.returncode == 0, r.stderr
    assert "rk: warning: skipped invalid protocol data: " in r.stderr
    assert "broken.toml: not valid UTF-8 (byte 0xff at position 0" in r.stderr
    assert "Traceback" not in r.stderr and "gigathink" in r.stdout


def test_protocols_validate_reports_an_undecodable_file_with_exit_1(tmp_path, bad_proto_config):
    broken = tmp_path / "protocols" / "broken.toml"
    for args in (("protocols", "validate", str(broken)), ("protocols", "validate")):
        r = run_rk(*args, env_extra=_env(tmp_path, bad_proto_config))
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"error: {broken}: not valid UTF-8 (byte 0xff at position 0" in r.stdout
        assert "1 problem(s) found" in r.stderr and "Traceback" not in r.stderr


def test_think_runs_with_a_warning_for_an_undecodable_protocol(fake_llm, tmp_path, bad_proto_config):
    fake_llm.default = schema_filler
    env = _env(tmp_path, bad_proto_config, OPENAI_BASE_URL=fake_llm.openai_base_url)
    r = run_rk("think", "--profile", "quick", "--format", "json", "why?", env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "broken.toml: not valid UTF-8" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(r.stdout)
