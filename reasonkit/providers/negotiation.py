"""Output-mode negotiation: how a JSON schema is asked of a server, per (provider, base URL, model).

OpenAI-compatible servers accept different subsets of the ways to ask for structured output, so the
`openai` kind tries them strongest first (`OPENAI_MODES`):

1. `json_schema`: `response_format: {"type": "json_schema", "json_schema": {...}}` (OpenAI, vLLM,
   Ollama, llama.cpp `llama-server`, LM Studio);
2. `json_object`: `response_format: {"type": "json_object", "schema": {...}}` - JSON mode plus the
   schema extension of llama-cpp-python and llama.cpp (servers without it just ignore `schema`);
3. `tools`: a forced function call (`tools` + `tool_choice` naming it); its arguments are the object;
4. `prompt`: no request feature at all: the schema is in the system prompt and the JSON is taken
   from the reply text.

For the weaker modes (json_object, tools, prompt) the schema is ALSO put in the system prompt.
The `anthropic` kind has `ANTHROPIC_MODES`: a forced tool, then `prompt`.

Rules (one small process-wide table, `NEGOTIATION`):

- "auto" uses the mode that worked before for this key, else the first mode not known to fail;
- a rejection (`ProviderError(kind="unsupported")`, see `classify_http` in errors_http.py) marks the mode as
  failed and the NEXT mode is tried at once, in the same attempt: no retry, no backoff;
- the first reply that shows a mode works marks it `works` and is logged once at INFO
  ("provider X (base, model): structured output via json_object");
- a reply in `json_schema` / `json_object` mode that "works" but carries no JSON at all - non-empty
  text without a single `{`, not cut off by max_tokens - means the server (or a gateway in front of
  it) dropped `response_format`: that mode is marked `ignored` and LATER calls use the next mode (the
  reply itself is returned as it is; the engine's repair call already goes out in the next mode).
  The same holds for `tools` when the reply has neither a tool call nor a `{`;
- a forced mode (`output_mode` in the settings) is used as it is: a rejection is raised as
  `ProviderError(kind="unsupported")` that names the setting.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from loguru import logger

from reasonkit.errors import ConfigError

OutputMode = Literal["json_schema", "json_object", "tools", "prompt"]
OPENAI_MODES: tuple[OutputMode, ...] = ("json_schema", "json_object", "tools", "prompt")
ANTHROPIC_MODES: tuple[OutputMode, ...] = ("tools", "prompt")
# Values of the `output_mode` settings.
OUTPUT_MODE_SETTINGS: tuple[str, ...] = ("auto", *OPENAI_MODES)
# Modes that also carry the schema in the system prompt.
SCHEMA_IN_PROMPT: frozenset[str] = frozenset({"json_object", "tools", "prompt"})

ModeState = Literal["untested", "works", "forced"]


@dataclass
class _Entry:
    provider: str
    base_url: str
    model: str
    modes: tuple[OutputMode, ...]
    forced: OutputMode | None = None
    working: OutputMode | None = None
    # mode -> why it is not used: "rejected: <server message>" or "ignored: <what was seen>"
    failed: dict[str, str] = field(default_factory=dict)

    def current(self) -> OutputMode:
        if self.forced is not None:
            return self.forced
        if self.working is not None:
            return self.working
        for mode in self.modes:
            if mode not in self.failed:
                return mode
        return self.modes[-1]  # everything failed: the last (prompt) mode is all there is

    def describe(self) -> dict[str, Any]:
        state: ModeState = "forced" if self.forced else "works" if self.working else "untested"
        return {
            "provider": self.provider,
            "base_url": self.base_url,
            "model": self.model,
            "mode": self.current(),
            "state": state,
            "failed": [{"mode": m, "reason": r} for m, r in self.failed.items()],
        }


def has_json_object(text: str) -> bool:
    """Whether the text could carry a JSON object at all (a `{` anywhere)."""
    return "{" in text


class ModeTable:
    """The process-wide negotiation table (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], _Entry] = {}

    def _entry(
        self, key: tuple[str, str, str], modes: tuple[OutputMode, ...], forced: OutputMode | None
    ) -> _Entry:
        entry = self._entries.get(key)
        if entry is None or entry.modes != modes or entry.forced != forced:
            # A provider rebuilt with another setting (reload) starts over for this key.
            entry = _Entry(*key, modes=modes, forced=forced)
            self._entries[key] = entry
        return entry

    def mode_for(
        self, key: tuple[str, str, str], modes: tuple[OutputMode, ...], forced: OutputMode | None = None
    ) -> OutputMode:
        with self._lock:
            return self._entry(key, modes, forced).current()

    def rejected(self, key: tuple[str, str, str], mode: OutputMode, reason: str) -> OutputMode | None:
        """The server rejected `mode`: the next mode to try now, None when none is left (or forced)."""
        with self._lock:
            entry = self._entries[key]
            if entry.forced is not None:
                return None
            entry.failed[mode] = f"rejected: {reason[:200]}"
            if entry.working == mode:
                entry.working = None
            if mode == entry.modes[-1]:
                return None
            nxt = entry.current()
        logger.info(
            "{}: the server rejected structured output via {} ({}); trying {}",
            _who(key),
            mode,
            reason[:200],
            nxt,
        )
        return nxt

    def ignored(self, key: tuple[str, str, str], mode: OutputMode, what: str) -> OutputMode | None:
        """A reply in `mode` carried no JSON: later calls use the next mode. Returns it."""
        with self._lock:
            entry = self._entries[key]
            if entry.forced is not None or mode == entry.modes[-1]:
                return None
            entry.failed[mode] = f"ignored: {what}"
            if entry.working == mode:
                entry.working = None
            nxt = entry.current()
        logger.warning(
            "{}: a reply in structured-output mode {} carried no JSON ({}): the server or a gateway "
            "seems to drop it; later calls use {}",
            _who(key),
            mode,
            what,
            nxt,
        )
        return nxt

    def worked(self, key: tuple[str, str, str], mode: OutputMode) -> None:
        with self._lock:
            entry = self._entries[key]
            if entry.forced is not None or entry.working == mode:
                return
            entry.working = mode
            entry.failed.pop(mode, None)
        logger.info("{}: structured output via {}", _who(key), mode)

    def snapshot(self, provider: str | None = None, base_url: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e.describe()
                for e in self._entries.values()
                if (provider is None or e.provider == provider)
                and (base_url is None or e.base_url == base_url)
            ]

    def clear(self) -> None:
        """Forget everything (tests; a reload that wants a fresh negotiation)."""
        with self._lock:
            self._entries.clear()


def _who(key: tuple[str, str, str]) -> str:
    provider, base, model = key
    return f"provider {provider} ({base}, {model})"


NEGOTIATION = ModeTable()


def resolve_mode(setting: str | None, modes: tuple[OutputMode, ...]) -> OutputMode | None:
    """A configured `output_mode` -> the forced mode for a provider with `modes` (None = auto).
    A provider without the configured mode (Anthropic has no json_schema/json_object) uses its
    native mode instead (the first of `modes`)."""
    if setting is None or setting == "auto":
        return None
    if setting not in OUTPUT_MODE_SETTINGS:
        raise ConfigError(f"unknown output_mode {setting!r} (one of {', '.join(OUTPUT_MODE_SETTINGS)})")
    if setting in modes:
        return setting  # type: ignore[return-value]
    return modes[0]
