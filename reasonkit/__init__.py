"""ReasonKit: structured-reasoning ThinkTools as an MCP server and CLI.

The public face for code that uses ReasonKit as a library, kept small on purpose:

    __version__
    ReasonKitError        the root of every error ReasonKit raises (the tree: reasonkit/errors.py)
    ConfigError, InputError, ProviderError, NoProviderConfigured, StoreError
                          the errors a caller meets: settings, tool inputs, a provider call, no
                          provider configured, the run database
    load_settings         settings from the config file, environment and defaults
    RunResult             one run: status, answer, confidence, steps, tokens, cost

`import reasonkit` loads only this module and the error classes: `load_settings` and `RunResult`
import their modules on first use (`rk --version` and the server's start stay fast). Everything
else is importable from the module that defines it and may change between versions.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from reasonkit.errors import (
    ConfigError,
    InputError,
    NoProviderConfigured,
    ProviderError,
    ReasonKitError,
    StoreError,
)

if TYPE_CHECKING:
    from reasonkit.config.loading import load_settings
    from reasonkit.engine.result import RunResult

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "InputError",
    "NoProviderConfigured",
    "ProviderError",
    "ReasonKitError",
    "RunResult",
    "StoreError",
    "__version__",
    "load_settings",
]

_LAZY = {"load_settings": "reasonkit.config.loading", "RunResult": "reasonkit.engine.result"}


def __getattr__(name: str) -> Any:
    """The names whose modules are heavy, imported on first access."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reasonkit' has no attribute {name!r}")
