"""The public face, `reasonkit/__init__.py`: a small, documented set of names for code that uses
ReasonKit as a library; `import reasonkit` stays cheap (the engine and settings load on first use)."""

from __future__ import annotations

import json
import subprocess
import sys

import reasonkit
from reasonkit import errors
from reasonkit.config.loading import load_settings
from reasonkit.engine.result import RunResult

PUBLIC = {
    "__version__",
    "ReasonKitError",
    "ConfigError",
    "InputError",
    "ProviderError",
    "NoProviderConfigured",
    "StoreError",
    "RunResult",
    "load_settings",
}


def test_the_public_names_are_the_defining_modules_objects() -> None:
    assert set(reasonkit.__all__) == PUBLIC
    for name in PUBLIC - {"__version__", "RunResult", "load_settings"}:
        assert getattr(reasonkit, name) is getattr(errors, name)
    assert reasonkit.RunResult is RunResult and reasonkit.load_settings is load_settings
    assert isinstance(reasonkit.__version__, str)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        reasonkit.Engine  # noqa: B018 - the access is the test
    except AttributeError as exc:
        assert "Engine" in str(exc)
    else:
        raise AssertionError("reasonkit.Engine should not exist")


def test_import_reasonkit_loads_neither_the_engine_nor_the_settings() -> None:
    code = (
        "import json, sys, reasonkit; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('reasonkit'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["reasonkit", "reasonkit.errors"]
