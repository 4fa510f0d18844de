"""MCP server test helpers: small protocols in a tmp dir, settings pointing at the fake LLM server,
and a factory for ReasonKitServer instances (each with its own run store and metrics registry)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reasonkit.config import Settings, load_settings
from reasonkit.observability.metrics import Metrics
from reasonkit.protocol.loader import load_registry
from reasonkit.server.mcp.app import ReasonKitServer, build_server
from tests.fakes.fake_llm import Reply, schema_filler
from tests.fakes.schemas import schema as out

TINY = f"""
id = "tiny"
name = "Tiny"
description = "A two-step test protocol."
use_when = "Testing the server."
avoid_when = "Anything real."
result = {{ step = "join", field = "answer" }}
[inputs.query]
type = "string"
required = true
max_length = 200
description = "The question."
[inputs.count]
type = "integer"
description = "How many."
[inputs.strict]
type = "boolean"
[inputs.ratio]
type = "number"
[inputs.context]
type = "string"
[[steps]]
id = "first"
kind = "generate"
prompt = "FIRST <query>{{{{ inputs.query }}}}</query> count={{{{ inputs.count }}}} \
strict={{{{ inputs.strict }}}} ratio={{{{ inputs.ratio }}}} <context>{{{{ inputs.context }}}}</context>"
output = {out(note="string")}
[[steps]]
id = "join"
kind = "synthesize"
depends_on = ["first"]
prompt = "JOIN {{{{ steps.first.note }}}}"
output = {out(answer="string")}
"""

FAN = f"""
id = "fan"
name = "Fan"
description = "list, for_each, join"
result = {{ step = "join", field = "answer" }}
[inputs.query]
type = "string"
required = true
[inputs.context]
type = "string"
[[steps]]
id = "list"
kind = "generate"
prompt = "LIST <query>{{{{ inputs.query }}}}</query> {{{{ inputs.context }}}}"
output = {out(items="array")}
[[steps]]
id = "each"
kind = "analyze"
for_each = "steps.list.items"
prompt = "EACH {{{{ item }}}}"
output = {out(note="string")}
[[steps]]
id = "join"
kind = "synthesize"
depends_on = ["each"]
prompt = "JOIN {{{{ steps.each }}}}"
output = {out(answer="string")}
"""

PROFILES = """
[profiles.pair]
description = "tiny then fan"
min_confidence = 0.5
[[profiles.pair.chain]]
protocol = "tiny"
[[profiles.pair.chain]]
protocol = "fan"
inputs = { query = "{{ inputs.query }} / {{ results.tiny.answer }}" }

[profiles.solo]
description = "tiny only"
min_confidence = 0.5
[[profiles.solo.chain]]
protocol = "tiny"
"""


def first_user_text(req: Any) -> str:
    msg = next(m for m in req.body["messages"] if m["role"] == "user")
    c = msg["content"]
    return c if isinstance(c, str) else "".join(b.get("text", "") for b in c)


def routed(table: dict[str, Any], delay: float = 0.0) -> Callable[[Any], Reply]:
    """Default handler: the JSON for the first key the step prompt starts with, else schema_filler;
    `delays` per prefix via a (dict, delay) tuple value."""

    def handler(req: Any) -> Reply:
        text = first_user_text(req)
        for key, value in table.items():
            if text.startswith(key):
                obj, d = value if isinstance(value, tuple) else (value, delay)
                if obj is None:
                    return dataclasses.replace(schema_filler(req), delay=d)
                return Reply(json=obj, delay=d)
        return dataclasses.replace(schema_filler(req), delay=delay)

    return handler


@pytest.fixture
def proto_dir(tmp_path: Path) -> Path:
    d = tmp_path / "protocols"
    d.mkdir()
    (d / "tiny.toml").write_text(TINY)
    (d / "fan.toml").write_text(FAN)
    (d / "profiles.toml").write_text(PROFILES)
    return d


def make_settings(fake: Any, data_dir: Path, provider: str | None = "openai", **env: str) -> Settings:
    environ = {"REASONKIT_DATA_DIR": str(data_dir), **env}
    if provider is None:  # no provider at all: not even the embedded local model
        environ.setdefault("LOCAL_MODEL_AUTO", "false")
    if provider == "openai":
        environ.update(OPENAI_BASE_URL=fake.openai_base_url, LLM_DEFAULT_PROVIDER="openai")
    elif provider == "anthropic":
        environ.update(
            ANTHROPIC_BASE_URL=fake.anthropic_base_url,
            ANTHROPIC_API_KEY="sk-ant-test-key-000",
            LLM_DEFAULT_PROVIDER="anthropic",
        )
    s = load_settings(environ=environ)
    s.protocols.dirs = []
    s.engine.default_profile = "solo"
    for p in s.llm.providers.values():
        p.max_retries = 0
    return s


@pytest.fixture
def make_server(fake_llm, proto_dir: Path, tmp_path: Path) -> Iterator[Callable[..., ReasonKitServer]]:
    made: list[ReasonKitServer] = []

    def make(
        provider: str | None = "openai", builtin: bool = False, settings: Settings | None = None, **env: str
    ) -> ReasonKitServer:
        s = settings or make_settings(fake_llm, tmp_path / "data", provider, **env)
        reg = load_registry([proto_dir], include_builtin=builtin)
        assert not reg.problems, reg.problems
        core = build_server(s, reg, metrics=Metrics())
        made.append(core)
        return core

    yield make
    for core in made:
        core.service.close()


@pytest.fixture
def server_env(tmp_path: Path, proto_dir: Path, fake_llm) -> dict[str, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[protocols]
dirs = [{json.dumps(str(proto_dir))}]
[engine]
default_profile = "solo"
[llm.providers.openai]
max_retries = 0
[server]
shutdown_grace_secs = 5
"""
    )
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "REASONKIT_CONFIG": str(cfg),
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "LLM_DEFAULT_PROVIDER": "openai",
        "LOG_LEVEL": "debug",  # as much logging as possible: none of it may reach stdout
        "PYTHONUNBUFFERED": "1",
        # the checkout under test, when it is not the installed one (a second work tree)
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }
