"""A principal's share of the run slots, through HTTP (the gate's reservation and the tool handler
together): `[server] max_runs_per_principal` for foreground runs too, and the `background` flag read
by one function everywhere, so `max_background_runs_per_client` holds for `" true"`."""

from __future__ import annotations

import anyio
import pytest

from reasonkit.server.http.apps import build_http_app
from reasonkit.server.http.security import SecurityPolicy
from tests.server.conftest import make_settings, routed
from tests.server.helpers import MCP_HEADERS, answer, asgi_client, call

pytestmark = pytest.mark.anyio
A, B, ROOT = "a" * 40, "b" * 40, "r" * 40


def server(make_server, fake_llm, tmp_path, **server_settings):
    s = make_settings(fake_llm, tmp_path / "data")
    s.server.admin_principals = ["root"]
    for key, value in server_settings.items():
        setattr(s.server, key, value)
    core = make_server(settings=s)
    core.bind_host = "127.0.0.1"
    environ = {"REASONKIT_AUTH_TOKENS": f"alice:{A},bob:{B},root:{ROOT}"}
    core.security = SecurityPolicy.from_settings(s, "127.0.0.1", environ)
    return core


def auth(token: str) -> dict[str, str]:
    return {**MCP_HEADERS, "authorization": f"Bearer {token}"}


def text_of(resp) -> str:
    msg = answer(resp)
    return str(msg.get("result", {}).get("content", [{}])[0].get("text", "")) + str(msg.get("error", ""))


async def test_a_spaced_true_is_a_background_run_at_the_gate_too(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({}, delay=2.0)
    core = server(make_server, fake_llm, tmp_path, max_background_runs_per_client=1)
    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        first = await http.post(
            "/mcp", json=call("tiny", {"query": "q", "background": " true"}), headers=auth(A)
        )
        assert "background" in text_of(first).lower()
        second = await http.post(
            "/mcp", json=call("tiny", {"query": "q", "background": " true"}), headers=auth(A)
        )
        assert "max_background_runs_per_client" in text_of(second)
        other = await http.post(
            "/mcp", json=call("tiny", {"query": "q", "background": "true"}), headers=auth(B)
        )
        assert "max_background_runs_per_client" not in text_of(other)


async def test_one_principal_cannot_take_every_slot(make_server, fake_llm, tmp_path):
    fake_llm.default = routed({}, delay=1.5)
    core = server(make_server, fake_llm, tmp_path, max_concurrent_runs=4)  # a share of 2 each
    texts: dict[str, str] = {}

    async def one(name: str, token: str, delay: float) -> None:
        await anyio.sleep(delay)
        texts[name] = text_of(
            await http.post("/mcp", json=call("tiny", {"query": name}), headers=auth(token))
        )

    async with asgi_client(build_http_app(core, "127.0.0.1")) as http:
        async with anyio.create_task_group() as tg:
            for i in range(2):
                tg.start_soon(one, f"a{i}", A, 0)
            tg.start_soon(one, "a-third", A, 0.4)
            tg.start_soon(one, "b", B, 0.5)
            tg.start_soon(one, "root", ROOT, 0.5)
    refused = texts.pop("a-third")
    assert "busy, retry in " in refused and "max_runs_per_principal" in refused
    assert not any("busy" in t for t in texts.values()), texts
