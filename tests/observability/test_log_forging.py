"""Log forging: text from outside (a `%0a` in a URL path, a tool argument, a model reply) can never
start a line of its own in a log, in any format or sink, whoever logs it (the formatter escapes it,
reasonkit/observability/logging.py)."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from loguru import logger

from reasonkit.config import load_settings
from reasonkit.observability.logging import InterceptHandler, setup_logging

# What an attacker puts in a request path: the decoded form of "%0a1999-01-01 ... | ERROR | ...".
PATH = unquote("/mcp%0d%0a1999-01-01 10:00:00.000 | ERROR   | admin token accepted%1b]0;pwned%07%e2%80%a8x")
FORGED = "admin token accepted"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    root.handlers = [h for h in root.handlers if not isinstance(h, InterceptHandler)]
    root.setLevel(level)
    logger.remove()
    logger.add(sys.stderr)


def _emit() -> None:
    """The same outside text through each way a line reaches a sink: loguru message and context
    fields, and a stdlib record (the MCP SDK, uvicorn, httpx) routed through InterceptHandler."""
    logger.bind(request_id=PATH, tool="think").warning("not found: {}", PATH)
    logging.getLogger("uvicorn.error").warning('"GET %s HTTP/1.1" 404', PATH)


@pytest.mark.parametrize("short", [False, True])
def test_text_lines_cannot_be_forged(restore_logging, short):
    stream = io.StringIO()
    setup_logging(stream=stream, level="info", fmt="text", short=short)
    _emit()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        assert FORGED in line and not line.lstrip().startswith("1999-01-01")
        assert "\x1b" not in line and "\x07" not in line and "\u2028" not in line
    assert "\\r\\n1999-01-01" in lines[0] and "\\x1b]0;pwned\\x07" in lines[0]


def test_text_log_file_cannot_be_forged(restore_logging, tmp_path):
    path = tmp_path / "rk.log"
    settings = load_settings(environ={"LOG_LEVEL": "info"})
    settings.logging.file = str(path)
    setup_logging(settings, stream=io.StringIO())
    _emit()
    logger.remove()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and all(FORGED in line for line in lines), lines


def test_json_lines_stay_one_object_each(restore_logging):
    stream = io.StringIO()
    setup_logging(stream=stream, level="info", fmt="json")
    _emit()
    raw = stream.getvalue()
    assert "\u2028" not in raw and "\x1b" not in raw
    lines = raw.splitlines()  # splitlines also breaks on U+2028 and NEL
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["message"] == f"not found: {PATH}" and first["request_id"] == PATH  # nothing lost
