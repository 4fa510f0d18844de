"""Engine test helpers: tiny protocols written to tmp dirs, and engines wired to the fake LLM server
through the real SDK providers."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonkit.config import load_settings
from reasonkit.engine import Engine
from reasonkit.protocol.loader import load_registry
from reasonkit.providers.stack import build_provider
from tests.engine._scripted import ScriptedProvider
from tests.fakes.schemas import schema

CONTEXT_BLOCK = "{{#if inputs.context}} <context>{{ inputs.context }}</context>{{/if}}"
CONTEXT_PLAIN = "{{#if inputs.context}}{{ inputs.context }}{{/if}}"
FANOUT_SAID = "{{#if results.fanout.answer}}FANOUT SAID {{ results.fanout.answer }}{{/if}}"

LINEAR = f"""
id = "linear"
name = "Linear"
description = "two independent steps and a join"
result = {{ step = "join", field = "answer" }}
[inputs.query]
type = "string"
required = true
max_length = 500
[inputs.context]
type = "string"
[[steps]]
id = "a"
kind = "generate"
prompt = "A: <query>{{{{ inputs.query }}}}</query>{CONTEXT_BLOCK}"
output = {schema(note="string")}
[[steps]]
id = "b"
kind = "analyze"
prompt = "B: <query>{{{{ inputs.query }}}}</query>"
output = {schema(note="string")}
[[steps]]
id = "join"
kind = "synthesize"
depends_on = ["a", "b"]
weight = 2
prompt = "JOIN {{{{ steps.a.note }}}} / {{{{ steps.b.note }}}}"
output = {schema(answer="string")}
"""

FANOUT = f"""
id = "fanout"
name = "Fanout"
description = "list then for_each then join"
result = {{ step = "join", field = "answer" }}
[inputs.query]
type = "string"
required = true
[inputs.context]
type = "string"
[[steps]]
id = "list"
kind = "generate"
min_items = 3
max_items = 5
prompt = "LIST <query>{{{{ inputs.query }}}}</query>{CONTEXT_PLAIN}"
output = {schema(items="array")}
[[steps]]
id = "each"
kind = "analyze"
for_each = "steps.list.items"
prompt = "EACH {{{{ item }}}} {{{{ item_index }}}}/{{{{ item_count }}}}"
output = {schema(note="string")}
[[steps]]
id = "join"
kind = "synthesize"
depends_on = ["each"]
prompt = "JOIN {{{{ steps.each }}}}"
output = {schema(answer="string")}
"""

PROFILES = f"""
[profiles.chain]
description = "linear then fanout, fanout only when unsure"
min_confidence = 0.8
[[profiles.chain.chain]]
protocol = "linear"
[[profiles.chain.chain]]
protocol = "fanout"
when = {{ confidence_below = 0.75 }}
[[profiles.chain.chain]]
protocol = "linear"
id = "linear2"
[profiles.chain.chain.inputs]
query = "{{{{ inputs.query }}}}"
context = "{FANOUT_SAID} FIRST SAID {{{{ results.linear.answer }}}}"
"""


@pytest.fixture
def proto_dir(tmp_path: Path) -> Path:
    d = tmp_path / "protocols"
    d.mkdir()
    (d / "linear.toml").write_text(LINEAR)
    (d / "fanout.toml").write_text(FANOUT)
    (d / "profiles.toml").write_text(PROFILES)
    return d


@pytest.fixture
async def make_engine(proto_dir, fake_llm):
    made: list[Engine] = []

    def make(provider: str = "openai", include_builtin: bool = False, **kw) -> Engine:
        env = {"LLM_DEFAULT_PROVIDER": provider}
        if provider == "anthropic":
            env["ANTHROPIC_BASE_URL"] = fake_llm.anthropic_base_url
        else:
            env["OPENAI_BASE_URL"] = fake_llm.openai_base_url
        settings = load_settings(environ=env)
        for p in settings.llm.providers.values():
            p.max_retries = 0
        reg = load_registry([proto_dir], include_builtin=include_builtin)
        assert not reg.problems, reg.problems
        engine = Engine(reg, build_provider(settings), **kw)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        await engine.provider.aclose()


@pytest.fixture
def scripted(proto_dir):
    """make(table, **engine_kw) -> (Engine, ScriptedProvider): the test protocols against an
    in-process scripted provider (see tests/engine/_scripted.py)."""

    def make(table=None, include_builtin: bool = False, **kw):
        provider = ScriptedProvider(table)
        reg = load_registry([proto_dir], include_builtin=include_builtin)
        assert not reg.problems, reg.problems
        return Engine(reg, provider, **kw), provider

    return make
