"""Reading a TOML file (a config or a protocol file) with one clear error for everything that can be
wrong with it: unreadable, not UTF-8 (binary, cut off mid-character), not TOML, nested too deeply.
The message never carries a traceback; callers prefix it with the file's path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from reasonkit.errors import TomlFileError

__all__ = ["read_toml"]


def _undecodable(exc: UnicodeDecodeError) -> str:
    byte = exc.object[exc.start] if exc.start < len(exc.object) else None
    at = f"byte 0x{byte:02x} at position {exc.start}" if byte is not None else f"position {exc.start}"
    return f"not valid UTF-8 ({at}: {exc.reason})"


def read_toml(path: Path) -> dict[str, Any]:
    """The file's top-level table; `TomlFileError` with the reason when it cannot be read."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except UnicodeDecodeError as exc:
        raise TomlFileError(_undecodable(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise TomlFileError(f"not valid TOML: {exc}") from None
    except RecursionError:
        raise TomlFileError("not valid TOML: nested too deeply") from None
    except OSError as exc:
        raise TomlFileError(f"cannot be read: {exc.strerror or exc}") from None
