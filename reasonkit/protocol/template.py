"""A tiny, safe template formatter for protocol prompts.

Syntax (the whole language):
    {{ path.to.value }}                    insert a value
    {{#if path}} ... {{else}} ... {{/if}}  include a block when the value is present, non-empty and not false

A template is parsed once into a tree; values are inserted as plain text and never parsed again, so
user text containing ``{{ ... }}``, ``{0}`` or ``${x}`` comes through verbatim. There is no
expression evaluation, no attribute access on Python objects and no ``eval``: paths only walk
dicts that the engine built.

Prompts wrap values in XML-style blocks (``<argument>{{ inputs.argument }}</argument>``) and tell the
model that text inside is material, not instructions. A value that could write ``</argument>`` would
end its block early and put the rest of its text outside it, so by default every inserted value has
each ``<`` that begins something tag-like (``<x``, ``</x``, ``< /x``, ``<!``, ``<?``) written as
``&lt;``: no value can open or close any block, whatever tags a (user's) protocol uses. ``a < b`` and
``<=`` are left alone. `render(..., quote=False)` inserts values as they are, for text that is not a
prompt (a profile entry's inputs, which are quoted when they reach the next prompt).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reasonkit.errors import TemplateError

__all__ = ["Template", "compiled", "lookup", "quote_markup", "render", "to_text"]

_TOKEN = re.compile(r"\{\{\s*(#if\s+|/if|else)?\s*([A-Za-z0-9_.]*)\s*\}\}")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_TAG_START = re.compile(r"<(?=[!?A-Za-z]|\s*/)")


@dataclass
class _Text:
    text: str


@dataclass
class _Var:
    path: str


@dataclass
class _If:
    path: str
    then: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)


class Template:
    def __init__(self, source: str):
        self.source = source
        self._nodes = _parse(source)

    def paths(self) -> list[str]:
        """Every value path the template names, in order of appearance."""
        out: list[str] = []
        _collect(self._nodes, out)
        return out

    def render(self, values: dict[str, Any], *, quote: bool = True) -> str:
        """The template with `values` inserted; `quote=False` skips `quote_markup` (not a prompt)."""
        parts: list[str] = []
        _render(self._nodes, values, parts, quote_markup if quote else str)
        return "".join(parts)


def _parse(source: str) -> list[Any]:
    root: list[Any] = []
    stack: list[tuple[_If, bool]] = []  # (node, in_else)

    def current() -> list[Any]:
        if not stack:
            return root
        node, in_else = stack[-1]
        return node.otherwise if in_else else node.then

    pos = 0
    for m in _TOKEN.finditer(source):
        if m.start() > pos:
            current().append(_Text(source[pos : m.start()]))
        pos = m.end()
        tag, path = (m.group(1) or "").strip(), m.group(2)
        if tag == "#if":
            if not _PATH.match(path):
                raise TemplateError(f"'{{{{#if}}}}' needs a value path, got {path!r}", m.start())
            node = _If(path)
            current().append(node)
            stack.append((node, False))
        elif tag == "else":
            if not stack or stack[-1][1]:
                raise TemplateError("'{{else}}' outside an '{{#if}}' block", m.start())
            stack[-1] = (stack[-1][0], True)
        elif tag == "/if":
            if not stack:
                raise TemplateError("'{{/if}}' without a matching '{{#if}}'", m.start())
            stack.pop()
        else:
            if not _PATH.match(path):
                raise TemplateError(f"'{{{{ {path} }}}}' is not a value path", m.start())
            current().append(_Var(path))
    if stack:
        raise TemplateError(
            f"'{{{{#if {stack[-1][0].path}}}}}' is never closed with '{{{{/if}}}}'", len(source)
        )
    if pos < len(source):
        current().append(_Text(source[pos:]))
    _refuse_stray_braces(root, source)
    return root


def _refuse_stray_braces(root: list[Any], source: str) -> None:
    """A stray "{{" that did not form a tag is most likely a typo in a protocol file."""
    for node in _walk(root):
        if isinstance(node, _Text) and "{{" in node.text:
            raise TemplateError("'{{' that does not start a valid tag", source.find("{{"))


def _walk(nodes: list[Any]):
    for n in nodes:
        yield n
        if isinstance(n, _If):
            yield from _walk(n.then)
            yield from _walk(n.otherwise)


def _collect(nodes: list[Any], out: list[str]) -> None:
    for n in nodes:
        if isinstance(n, _Var):
            out.append(n.path)
        elif isinstance(n, _If):
            out.append(n.path)
            _collect(n.then, out)
            _collect(n.otherwise, out)


_MISSING = object()


def lookup(values: dict[str, Any], path: str) -> Any:
    cur: Any = values
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def _present(value: Any) -> bool:
    if value is _MISSING or value is None or value is False:
        return False
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def to_text(value: Any) -> str:
    """How a value appears inside a prompt."""
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return "\n".join(f"- {v}" for v in value)
    return json.dumps(value, indent=2, ensure_ascii=False)


def quote_markup(text: str) -> str:
    """`text` unable to open or close an XML-style block: a tag-like ``<`` becomes ``&lt;``."""
    return _TAG_START.sub("&lt;", text)


def _render(nodes: list[Any], values: dict[str, Any], parts: list[str], quote: Callable[[str], str]) -> None:
    for n in nodes:
        if isinstance(n, _Text):
            parts.append(n.text)
        elif isinstance(n, _Var):
            parts.append(quote(to_text(lookup(values, n.path))))
        else:
            _render(n.then if _present(lookup(values, n.path)) else n.otherwise, values, parts, quote)


@functools.lru_cache(maxsize=1024)
def compiled(source: str) -> Template:
    """A parsed template, cached by its source text (prompts are rendered for every item and run)."""
    return Template(source)


def render(source: str, values: dict[str, Any], *, quote: bool = True) -> str:
    return compiled(source).render(values, quote=quote)
