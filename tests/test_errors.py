"""The error tree: every exception class ReasonKit defines lives in reasonkit/errors.py under
ReasonKitError, and the tree drawn in that module's docstring is the real one (it cannot drift:
this test fails with the tree to paste when a class is added, moved or renamed)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import reasonkit
from reasonkit import errors


def draw(cls: type[BaseException] = errors.ReasonKitError, depth: int = 0) -> list[str]:
    """The tree as the docstring draws it: one class a line, indented two spaces per level, the
    built-in bases it keeps (for `except ValueError` in older user code) in parentheses."""
    kept = [b.__name__ for b in cls.__bases__ if not issubclass(b, errors.ReasonKitError)]
    kept = [name for name in kept if name != "Exception"]
    line = "    " + "  " * depth + cls.__name__ + (f" ({', '.join(kept)})" if kept else "")
    out = [line]
    for sub in cls.__subclasses__():  # in definition order
        out += draw(sub, depth + 1)
    return out


def drawn_in_docstring() -> list[str]:
    """The indented block that starts with `    ReasonKitError` in the module docstring."""
    lines = (errors.__doc__ or "").splitlines()
    if "    ReasonKitError" not in lines:
        return []
    start = lines.index("    ReasonKitError")
    block = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line)
    return block


def test_the_docstring_draws_the_real_tree() -> None:
    expected = draw()
    assert drawn_in_docstring() == expected, "paste into reasonkit/errors.py's docstring:\n" + "\n".join(
        expected
    )


def test_every_exception_class_lives_in_errors_py() -> None:
    """Importing every module of the package: any exception class defined outside errors.py (or
    one in errors.py outside the tree) fails here, with its place."""
    outside: list[str] = []
    for info in pkgutil.walk_packages(reasonkit.__path__, "reasonkit."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in inspect.getmembers(module, inspect.isclass):
            if value.__module__ != info.name or not issubclass(value, BaseException):
                continue
            if info.name != "reasonkit.errors" or not issubclass(value, errors.ReasonKitError):
                outside.append(f"{info.name}.{name}")
    assert outside == []
