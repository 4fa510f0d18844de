"""What every `rk` subcommand shares: exit codes, the failure exit, settings and the registry.

Only click (and the tiny reasonkit.safetext) is imported at module level; settings, protocols and
everything heavy are imported inside the functions, so `rk --help` stays fast.

Text that carries run content (a query, a model's reply, a server's error message) is written with
`echo_untrusted`: C0/C1 control characters other than newline and tab are removed, so an OSC or
CSI sequence in it (clipboard write, window title, cursor moves) is shown, never acted on."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

import click

from reasonkit.safetext import strip_controls

if TYPE_CHECKING:
    from reasonkit.config import Settings
    from reasonkit.protocol.loader import Registry

__all__ = [
    "DEFAULT_CLI_LOG_LEVEL",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "LOG_LEVELS",
    "early_logging",
    "echo_untrusted",
    "fail",
    "load_registry",
    "load_settings",
    "run_and_exit",
    "setup_cli_logging",
    "warn",
    "write_atomically",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print `rk: error: ...` on stderr and exit (2: a usage or configuration problem)."""
    echo_untrusted(f"rk: error: {message}", err=True)
    sys.exit(code)


def write_atomically(path: Path, text: str) -> None:
    """Write a user-named output file whole or not at all (a temporary file beside it, fsynced, then
    renamed); any failure is one `rk: error: cannot write ...` line and exit 1, no partial file."""
    import contextlib
    import os

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_FAILED)


def run_and_exit(command: Callable[[], object]) -> NoReturn:
    """Run the `rk` command, then end the process at once: the atexit handlers run (they close the
    local model, see providers/llama_pool.py), stdout and stderr are flushed, and `os._exit` skips
    the interpreter's teardown. That teardown (freeing every module and object, joining worker
    threads a cancelled call left behind) held `rk think` open for seconds after its result, and
    after Ctrl-C. Only for the real process: an in-process caller (click's test runner) calls
    `main` itself."""
    import atexit
    import os

    code = 0
    try:
        command()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            pass
    os._exit(code)


def warn(message: str) -> None:
    echo_untrusted(f"rk: warning: {message}", err=True)


def echo_untrusted(text: str, *, err: bool = False, nl: bool = True) -> None:
    """`click.echo` for text with run content in it: control characters stripped (module docstring)."""
    click.echo(strip_controls(text), err=err, nl=nl)


def load_settings(ctx: click.Context, overrides: dict[str, Any] | None = None) -> Settings:
    """The layered settings (defaults < file < environment < these CLI overrides); exit 2 on a
    config problem."""
    from reasonkit.config import load_settings as load
    from reasonkit.errors import ConfigError

    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    config = obj.get("config")
    # `rk --log-level/--log-format` (global), then the command's own flags where given
    merged: dict[str, Any] = {"logging.level": obj.get("log_level"), "logging.format": obj.get("log_format")}
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return load(config, merged)
    except ConfigError as exc:
        fail(str(exc))


def load_registry(settings: Settings) -> Registry:
    """Built-in and user protocols; invalid files are skipped with a warning each."""
    from reasonkit.protocol.loader import load_registry as load

    registry = load([Path(d) for d in settings.protocols.dirs])
    for problem in registry.problems:
        warn(f"skipped invalid protocol data: {problem}")
    return registry


LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "critical", "off")
DEFAULT_CLI_LOG_LEVEL = "warning"  # a command's output is its result; logs only from warnings up


def early_logging(level: str | None, fmt: str | None) -> None:
    """Logging before any settings are read (every command): `--log-level` > LOG_LEVEL > RUST_LOG >
    warnings only; `--log-format` > LOG_FORMAT > text, as short `rk: level: message` lines when
    stderr is a terminal. A command that loads settings calls `setup_cli_logging` after."""
    import os

    from reasonkit.observability.logging import setup_logging

    if level is None:
        level = os.environ.get("LOG_LEVEL") or None
    if level is None and os.environ.get("RUST_LOG"):
        from reasonkit.config.loading import _rust_log_level

        level = _rust_log_level(os.environ["RUST_LOG"])
    fmt = fmt or os.environ.get("LOG_FORMAT") or "text"
    fmt = fmt if fmt in ("text", "json") else "text"
    setup_logging(
        None,
        stream=cast("TextIO", _Stderr()),
        level=level or DEFAULT_CLI_LOG_LEVEL,
        fmt=fmt,
        short=fmt == "text" and _tty(),
    )


def setup_cli_logging(settings: Settings, default_level: str = DEFAULT_CLI_LOG_LEVEL) -> None:
    """Logging for a command from its settings: the level set anywhere (`--log-level`, LOG_LEVEL,
    RUST_LOG, [logging] level) or `default_level`; short human lines on a terminal."""
    from reasonkit.observability.logging import setup_logging

    explicit = settings.logging.level is not None
    short = settings.logging.format == "text" and _tty()
    setup_logging(
        settings, stream=cast("TextIO", _Stderr()), level=None if explicit else default_level, short=short
    )


def _tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Stderr:
    """Whatever `sys.stderr` is at the time of each write (click's test runner swaps it per call)."""

    def write(self, text: str) -> None:
        sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
