"""Smoke test of bench/overhead_bench.py and its floor, bench/minimal_sdk_server.py: the minimal
server answers a tools/call as `rk serve-mcp` does (the load generator reads both alike), and the
summary takes its ratios within each round. No assertions on speed."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from bench.load_bench import HEADERS, Response, _call_body, _parse_reply
from bench.minimal_sdk_server import build_app
from bench.overhead_bench import summarise


def test_the_minimal_server_answers_a_tool_call_like_ours() -> None:
    with TestClient(build_app()) as client:
        resp = client.post("/mcp", content=_call_body(1, "q"), headers=HEADERS)
    reply = Response(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content)
    assert _parse_reply(reply) == (True, "")


def test_ratios_are_taken_within_each_round() -> None:
    rounds = [
        {"loadavg": [1.0], "sdk_minimal": 2.0, "after.cached": 4.0, "after.uncached": 7.0,
         "after.errors": 0, "openai_sdk": 2.0, "openai_sdk_plain": 1.5, "httpx_post": 1.0,
         "raw_post": 0.1, "loadavg_end": [1.0]},
        {"loadavg": [2.0], "sdk_minimal": 4.0, "after.cached": 6.0, "after.uncached": 10.0,
         "after.errors": 0, "openai_sdk": 4.0, "openai_sdk_plain": 3.0, "httpx_post": 2.0,
         "raw_post": 0.2, "loadavg_end": [2.0]},
    ]  # fmt: skip
    out = summarise(rounds, {"after": "rk"}, None)
    cached = out["ratios"]["after: cached / sdk_minimal (goal <= 1.3)"]
    assert cached == {"min": 1.5, "median": 1.75, "max": 2.0}
    per_call = out["ratios"]["after: (uncached - cached) / openai_sdk (goal <= 2.0)"]
    assert per_call == {"min": 1.0, "median": 1.25, "max": 1.5}
    assert out["cpu_ms_per_call"]["sdk_minimal"]["median"] == 3.0
    json.dumps(out)
