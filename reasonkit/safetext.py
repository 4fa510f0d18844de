"""Text that came from outside (request paths, user input, model output), made safe for the place it
is written to. Both sinks are line- and escape-sequence-oriented, so the danger is the same: control
characters in a value that the sink interprets instead of showing.

- `escape_controls(text)` for logs: every control character (C0 but tab, DEL, C1) and the Unicode
  line and paragraph separators are written as a visible escape (newline -> ``\\n``, ESC ->
  ``\\x1b``), so no value can start a forged log line (``%0a`` in a URL path) or hide part of one.
- `strip_controls(text)` for a terminal: every C0/C1 control except newline and tab is removed, so
  OSC and CSI sequences (clipboard writes, window titles, cursor moves, colours) in a query or a
  model's reply are shown as the plain text around them and never acted on.

Layer 0: the standard library only, so every layer can use it.
"""

from __future__ import annotations

import re

__all__ = ["escape_controls", "strip_controls"]

_LOG_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escaped(match: re.Match[str]) -> str:
    return match.group(0).encode("unicode_escape").decode("ascii")


def escape_controls(text: str) -> str:
    """`text` on one line: control characters and line separators as visible escapes; tab kept."""
    return _LOG_UNSAFE.sub(_escaped, text)


def strip_controls(text: str) -> str:
    """`text` safe to print on a terminal: C0 and C1 controls removed, except newline and tab."""
    return _TERMINAL_UNSAFE.sub("", text)
