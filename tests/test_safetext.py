"""reasonkit/safetext.py: outside text made safe for a log line (escaped) and a terminal (stripped)."""

from __future__ import annotations

import pytest

from reasonkit.safetext import escape_controls, strip_controls

OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"  # writes "rm -rf ~" to the clipboard
OSC_TITLE = "\x1b]0;owned\x1b\\"
CSI_CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b31m"  # the 8-bit CSI


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\tstays", "tab\tstays"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nel\x85ls\u2028ps\u2029", "nel\\x85ls\\u2028ps\\u2029"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("plain ünïcödé", "plain ünïcödé"),
    ],
)
def test_escape_controls(text, escaped):
    assert escape_controls(text) == escaped
    assert len(escape_controls(text).splitlines()) <= 1


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"before{OSC_CLIPBOARD}after", "before]52;c;cm0gLXJmIH4=after"),
        (f"x{OSC_TITLE}y", "x]0;owned\\y"),
        (f"{CSI_CLEAR}text", "[2J[Htext"),
        (f"{C1_CSI}c1", "31mc1"),
        ("keeps\nlines\tand tabs", "keeps\nlines\tand tabs"),
        ("overwrite\rline", "overwriteline"),
        ("bell\x07 backspace\x08", "bell backspace"),
    ],
)
def test_strip_controls(text, shown):
    assert strip_controls(text) == shown
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F for c in strip_controls(text))
