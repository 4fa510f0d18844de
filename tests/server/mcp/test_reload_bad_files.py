"""Reload (SIGHUP) with files that cannot be decoded or loaded: the running server keeps its previous
settings and protocols, counts the failure and logs why; it never dies (issue 11, point 9)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from loguru import logger

from reasonkit.config import load_settings
from tests.server.conftest import make_settings
from tests.server.helpers import metric

pytestmark = pytest.mark.anyio

BAD_BYTES = b"\xff\xfe\x00garbage"


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Loguru messages at INFO and above, as "LEVEL|message" strings."""
    lines: list[str] = []
    handler = logger.add(
        lambda m: lines.append(str(m).rstrip("\n")), level="INFO", format="{level}|{message}"
    )
    yield lines
    logger.remove(handler)


def _reloads(core, outcome: str) -> float:
    return metric(core.metrics.render()[0].decode(), f'reasonkit_config_reloads_total{{outcome="{outcome}"}}')


@pytest.fixture
def core(make_server, fake_llm, proto_dir, tmp_path):
    settings = make_settings(fake_llm, tmp_path / "data")
    settings.protocols.dirs = [str(proto_dir)]
    return make_server(settings=settings, builtin=True)  # as a reload loads them


async def test_undecodable_protocol_file_keeps_its_previous_version(core, proto_dir, log_lines):
    before = {t.name for t in core.tools}
    assert {"tiny", "fan"} <= before
    (proto_dir / "fan.toml").write_bytes(BAD_BYTES)  # was good: its loaded version stays
    (proto_dir / "junk.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # new and binary: skipped
    assert await core.reload() is True
    assert {t.name for t in core.tools} == before
    assert core.protocols["fan"].steps[0].id == "list"
    assert _reloads(core, "partial") == 1 and _reloads(core, "failed") == 0
    warnings = [line for line in log_lines if line.startswith("WARNING|skipped invalid protocol data")]
    assert any("fan.toml: not valid UTF-8 (byte 0xff at position 0" in w for w in warnings)
    assert any("junk.toml: not valid UTF-8 (byte 0x89 at position 0" in w for w in warnings)
    assert any("kept the previous version of fan" in line for line in log_lines)


async def test_undecodable_config_file_leaves_everything_as_it_was(core, proto_dir, tmp_path, log_lines):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[protocols]\ndirs = [{json.dumps(str(proto_dir))}]\n")
    core.settings_loader = lambda: load_settings(cfg, environ={})
    old_settings, old_protocols = core.settings, dict(core.protocols)
    cfg.write_bytes(BAD_BYTES)
    (proto_dir / "tiny.toml").unlink()  # would be dropped by a reload that went through
    assert await core.reload() is False
    assert core.settings is old_settings and core.protocols == old_protocols
    assert "tiny" in {t.name for t in core.tools}
    assert _reloads(core, "failed") == 1
    errors = [line for line in log_lines if line.startswith("ERROR|reload failed")]
    assert len(errors) == 1 and f"{cfg}: not valid UTF-8 (byte 0xff at position 0" in errors[0]


@pytest.mark.parametrize("exc", [ValueError("bad value"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "x")])
async def test_any_failure_while_loading_is_a_failed_reload(core, proto_dir, log_lines, exc):
    def boom():
        raise exc

    core.settings_loader = boom
    (proto_dir / "tiny.toml").unlink()
    assert await core.reload() is False
    assert "tiny" in core.protocols and _reloads(core, "failed") == 1
    errors = [line for line in log_lines if line.startswith("ERROR|reload failed")]
    assert len(errors) == 1 and f"{type(exc).__name__}: {exc}" in errors[0]
    # and the next good reload still works
    core.settings_loader = None
    assert await core.reload() is True
    assert "tiny" not in core.protocols and _reloads(core, "failed") == 1
