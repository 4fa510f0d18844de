"""The fault matrix, for both wire formats, through build_provider (retries, timeouts, errors)."""

from __future__ import annotations

import time

import pytest

from reasonkit.errors import ProviderError
from reasonkit.observability.metrics import Metrics
from tests.fakes.fake_llm import Reply
from tests.providers.conftest import (
    ANTHROPIC_KEY,
    OK,
    base_url,
    breaker_of,
    closed_port,
    drip_server,
    make_settings,
    open_provider,
    request,
    sample,
)

pytestmark = pytest.mark.anyio
APIS = ["anthropic", "openai"]


@pytest.mark.parametrize("api", APIS)
async def test_429_with_retry_after_waits_that_long(fake_llm, api):
    fake_llm.push(Reply(status=429, headers={"retry-after": "0.3"}), Reply(json=OK))
    m = Metrics()
    async with open_provider(make_settings(api, base_url(fake_llm, api)), m) as p:
        r = await p.complete(request())
    assert r.attempts == 2 and '"answer": "ok"' in r.text
    first, second = fake_llm.requests
    assert first.finished_at is not None and second.received_at - first.finished_at >= 0.28
    assert sample(m, "reasonkit_provider_retries_total", provider=api, type="rate_limit") == 1


@pytest.mark.parametrize("api", APIS)
async def test_429_without_retry_after_backs_off_and_retries(fake_llm, api):
    fake_llm.push(Reply(status=429), Reply(status=429), Reply(json=OK))
    async with open_provider(make_settings(api, base_url(fake_llm, api))) as p:
        r = await p.complete(request())
    assert r.attempts == 3 and len(fake_llm.requests) == 3
    gaps = [
        b.received_at - a.finished_at for a, b in zip(fake_llm.requests, fake_llm.requests[1:], strict=False)
    ]
    assert all(0 <= g < 1.0 for g in gaps)  # jittered exponential backoff from 0.01s


@pytest.mark.parametrize(
    "api, status",
    [
        ("anthropic", 500),
        ("anthropic", 502),
        ("anthropic", 503),
        ("anthropic", 529),
        ("openai", 500),
        ("openai", 502),
        ("openai", 503),
    ],
)
async def test_server_errors_are_retried(fake_llm, api, status):
    fake_llm.push(Reply(status=status), Reply(json=OK))
    m = Metrics()
    async with open_provider(make_settings(api, base_url(fake_llm, api)), m) as p:
        r = await p.complete(request())
    assert r.attempts == 2 and [q.status for q in fake_llm.requests] == [status, 200]
    assert sample(m, "reasonkit_provider_retries_total", provider=api, type="server") == 1


@pytest.mark.parametrize("api", APIS)
async def test_exhausted_retries_give_a_clear_error(fake_llm, api):
    fake_llm.push(*[Reply(status=503, text="upstream overloaded")] * 3)
    s = make_settings(api, base_url(fake_llm, api))
    s.llm.providers[api].max_retries = 2
    async with open_provider(s) as p:
        with pytest.raises(ProviderError) as err:
            await p.complete(request())
    assert err.value.kind == "server" and err.value.status == 503 and err.value.retryable
    assert str(err.value).startswith(f"{api}: HTTP 503")
    assert "upstream overloaded" in str(err.value) and "gave up after 3 attempts" in str(err.value)
    assert len(fake_llm.requests) == 3


@pytest.mark.parametrize("api", APIS)
async def test_read_timeout_is_retried(fake_llm, api):
    fake_llm.push(Reply(json=OK, delay=3.0), Reply(json=OK))
    s = make_settings(api, base_url(fake_llm, api))
    s.llm.providers[api].timeout_secs = 0.3
    m = Metrics()
    t0 = time.monotonic()
    async with open_provider(s, m) as p:
        r = await p.complete(request())
    assert r.attempts == 2 and time.monotonic() - t0 < 2.0
    assert sample(m, "reasonkit_provider_retries_total", provider=api, type="timeout") == 1


@pytest.mark.parametrize("api", APIS)
async def test_slow_drip_reply_hits_the_whole_reply_timeout_and_is_retried(api):
    async with drip_server(interval=0.05) as drip:
        url = f"http://127.0.0.1:{drip.port}" + ("/v1" if api == "openai" else "")
        s = make_settings(api, url)
        s.llm.providers[api].model = "gpt-4.1-mini"  # a model set: the drip server is not asked for its list
        s.llm.providers[api].timeout_secs = 0.4
        s.llm.providers[api].max_retries = 1
        m = Metrics()
        t0 = time.monotonic()
        async with open_provider(s, m) as p:
            with pytest.raises(ProviderError) as err:
                await p.complete(request())
        elapsed = time.monotonic() - t0
    # Each read got a byte within 0.05s, so only the whole-attempt deadline could stop it.
    assert err.value.kind == "timeout" and "no complete reply within 0.4s" in str(err.value)
    assert "gave up after 2 attempts" in str(err.value)
    # 3 connections: the first call's question whether the server is serial (a model listing, given
    # up after 1 s: providers/openai_compat.py), then the two attempts
    assert drip.connections == (3 if api == "openai" else 2) and 0.8 <= elapsed < 4.0
    assert sample(m, "reasonkit_provider_retries_total", provider=api, type="timeout") == 1


@pytest.mark.parametrize("api", APIS)
async def test_connection_reset_is_retried(fake_llm, api):
    fake_llm.push(Reply(drop_connection=True), Reply(json=OK))
    m = Metrics()
    async with open_provider(make_settings(api, base_url(fake_llm, api)), m) as p:
        r = await p.complete(request())
    assert r.attempts == 2 and fake_llm.requests[0].status is None
    assert sample(m, "reasonkit_provider_retries_total", provider=api, type="connection") == 1


@pytest.mark.parametrize("api", APIS)
async def test_malformed_json_body_is_retried(fake_llm, api):
    fake_llm.push(Reply(raw_body=b'{"id": "x", "content": [tru'), Reply(json=OK))
    m = Metrics()
    async with open_provider(make_settings(api, base_url(fake_llm, api)), m) as p:
        r = await p.complete(request())
    assert r.attempts == 2
    assert sample(m, "reasonkit_provider_retries_total", provider=api, type="bad_response") == 1


@pytest.mark.parametrize("api", APIS)
async def test_truncated_reply_passes_through_without_retry(fake_llm, api):
    fake_llm.push(Reply(json={"answer": "half an ans", "confidence": 0.5}, stop="max_tokens"))
    async with open_provider(make_settings(api, base_url(fake_llm, api))) as p:
        r = await p.complete(request())
    assert r.stop_reason == "max_tokens" and r.attempts == 1 and len(fake_llm.requests) == 1
    assert "half an ans" in r.text


@pytest.mark.parametrize("api", APIS)
async def test_provider_down_is_a_clear_connection_error(api):
    url = f"http://127.0.0.1:{closed_port()}" + ("/v1" if api == "openai" else "")
    s = make_settings(api, url)
    s.llm.providers[api].max_retries = 2
    m = Metrics()
    async with open_provider(s, m) as p:
        with pytest.raises(ProviderError) as err:
            await p.complete(request())
        assert (breaker := breaker_of(p)) is not None and breaker.failures == 1
    assert err.value.kind == "connection"
    assert "connection failed" in str(err.value) and "gave up after 3 attempts" in str(err.value)
    assert sample(m, "reasonkit_provider_retries_total", provider=api, type="connection") == 2


@pytest.mark.parametrize("api", APIS)
async def test_auth_and_bad_request_errors_are_not_retried_and_do_not_trip_the_breaker(fake_llm, api):
    fake_llm.push(
        *[Reply(status=401, error_type="authentication_error")] * 4, Reply(status=400, text="bad field")
    )
    s = make_settings(api, base_url(fake_llm, api))
    m = Metrics()
    async with open_provider(s, m) as p:
        for _ in range(4):
            with pytest.raises(ProviderError) as err:
                await p.complete(request())
            assert err.value.kind == "auth" and "check the API key" in str(err.value)
        with pytest.raises(ProviderError) as bad:
            await p.complete(request())
        assert (breaker := breaker_of(p)) is not None and breaker.state == "closed"
    assert bad.value.kind == "bad_request" and "bad field" in str(bad.value)
    assert len(fake_llm.requests) == 5  # no retries
    assert sample(m, "reasonkit_circuit_breaker_state", provider=api) == 0
    assert ANTHROPIC_KEY not in str(err.value) + str(bad.value)


@pytest.mark.parametrize("api", APIS)
async def test_retry_after_beyond_the_cap_fails_at_once(fake_llm, api):
    fake_llm.push(Reply(status=429, headers={"retry-after": "30"}))
    s = make_settings(api, base_url(fake_llm, api))
    s.llm.providers[api].retry_max_delay_secs = 1.0
    t0 = time.monotonic()
    async with open_provider(s) as p:
        with pytest.raises(ProviderError) as err:
            await p.complete(request())
    assert time.monotonic() - t0 < 1.0 and len(fake_llm.requests) == 1
    assert err.value.kind == "rate_limit" and err.value.retry_after == 30
    assert "asked to wait 30s" in str(err.value)
