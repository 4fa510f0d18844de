"""PII redaction (`[privacy] redact_pii`, `redact_provider_input`): the detectors on realistic text
(including what must NOT be redacted: order numbers, dates, versions, Luhn-invalid numbers), and the
three places it applies: stored runs, log lines, and what is sent to the provider."""

# ruff: noqa: F811 - the fixtures make_server and proto_dir come from tests/server/conftest.py

from __future__ import annotations

import io
import json

import pytest
from loguru import logger
from mcp import Client

from reasonkit.observability.logging import setup_logging
from reasonkit.observability.redaction import card_number_ok, iban_ok, luhn_ok, redact_pii, redact_value
from tests.fakes.fake_llm import schema_filler
from tests.server.conftest import make_server, make_settings, proto_dir  # noqa: F401 - fixtures

pytestmark = pytest.mark.anyio

SUPPORT_TICKET = (
    "Hi, I'm locked out. My email is jane.doe+billing@example-mail.co.uk and my phone +44 20 7946 0958. "
    "I paid with 4111 1111 1111 1111 (exp 09/27) from IBAN DE89 3704 0044 0532 0130 00. Last login "
    "from 203.0.113.42 and 2001:db8:85a3::8a2e:370:7334. Order #100234987, placed 2024-03-15."
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to a.b-c@mail.example.org.", "write to [EMAIL]."),
        ("Visa 4111-1111-1111-1111, MC 5555 5555 5555 4444.", "Visa [CARD], MC [CARD]."),
        ("Amex 3782 822463 10005 on file", "Amex [CARD] on file"),
        ("card 4111111111111111 exp 12/26", "card [CARD] exp 12/26"),
        ("IBAN GB82WEST12345698765432 or FR14 2004 1010 0505 0001 3M02 606", "IBAN [IBAN] or [IBAN]"),
        ("from 192.168.1.20:8080 and [2001:db8::1]", "from [IP]:8080 and [[IP]]"),
        ("loopback ::1 or fe80::1ff:fe23:4567:890a", "loopback [IP] or [IP]"),
        ("call +1 (555) 123-4567 or +49 30 1234567", "call [PHONE] or [PHONE]"),
        (
            "office (555) 123-4567, mobile 555-123-4567, Berlin 030 1234 5678",
            "office [PHONE], mobile [PHONE], Berlin [PHONE]",
        ),
    ],
)
def test_finds_pii(text: str, expected: str) -> None:
    assert redact_pii(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Order #100234987 and order 1234567890123456 shipped",  # Luhn-valid? no issuer prefix either
        "card 4111 1111 1111 1112 was declined",  # fails Luhn
        "reference 79927398713",  # Luhn-valid, but too short for a card and no issuer prefix
        "Dates 2024-03-15, 15.03.2024, 03/15/2024 and 12:30:45",
        "Python 3.11.4, release v10.0.0.1, semver 1.2.3-rc.1, build 2024.03.15.1",
        "Total $1,234.56 for 3 x 4.99 EUR; invoice INV-2024-000123",
        "ISBN 978-3-16-148410-0, UPS 1Z999AA10123456784",
        "uuid 123e4567-e89b-12d3-a456-426614174000, hash deadbeef:cafe, ratio 16:9",
        "bad IBAN DE89 3704 0044 0532 0130 01 (checksum fails)",
        "not an address: 999.1.1.1 or 1.2.3",
        "MAC 00:1A:2B:3C:4D:5E",
        "no digits at all, just words.",
    ],
)
def test_leaves_lookalikes_alone(text: str) -> None:
    assert redact_pii(text) == text


def test_realistic_ticket() -> None:
    out = redact_pii(SUPPORT_TICKET)
    for marker in ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[IP]"):
        assert marker in out
    for leaked in ("jane.doe", "7946", "4111", "DE89", "203.0.113", "2001:db8"):
        assert leaked not in out
    assert "Order #100234987, placed 2024-03-15." in out and "(exp 09/27)" in out


def test_checksums() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert card_number_ok("4111111111111111") and not card_number_ok("1111111111111117")  # no issuer
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE88 3704 0044 0532 0130 00")


def test_redact_value_walks_json() -> None:
    value = {"inputs": {"query": "mail x@y.io"}, "n": 4111111111111111, "list": ["+1 555 123 4567", 3]}
    assert redact_value(value) == {
        "inputs": {"query": "mail [EMAIL]"},
        "n": 4111111111111111,
        "list": ["[PHONE]", 3],
    }


async def call(core, args):
    async with Client(core.server) as client:
        result = await client.call_tool("tiny", args)
    assert not result.is_error, result.content
    return result.structured_content


async def test_stored_runs_are_redacted(make_server, fake_llm, tmp_path):
    fake_llm.default = schema_filler
    settings = make_settings(fake_llm, tmp_path / "data", REDACT_PII="true")
    settings.privacy.redact_pii = True
    core = make_server(settings=settings)
    out = await call(core, {"query": SUPPORT_TICKET[:200]})
    stored = core.service.store.get(out["run_id"])
    text = json.dumps(stored)
    assert "jane.doe" not in text and "7946 0958" not in text
    assert "[EMAIL]" in stored["inputs"]["query"]
    assert "[EMAIL]" in stored["entries"][0]["steps"][0]["prompt"]  # the rendered prompt too
    summary = core.service.store.summary(out["run_id"])
    assert "[EMAIL]" in summary["inputs"]["query"]
    # The provider still got the real text: only redact_provider_input changes what is sent.
    assert any("jane.doe" in json.dumps(r.body) for r in fake_llm.requests)


async def test_stored_runs_are_verbatim_by_default(make_server, fake_llm):
    fake_llm.default = schema_filler
    core = make_server()
    out = await call(core, {"query": "mail jane.doe@example.com"})
    assert core.service.store.get(out["run_id"])["inputs"]["query"] == "mail jane.doe@example.com"


async def test_provider_input_is_redacted_when_asked(make_server, fake_llm, tmp_path):
    fake_llm.default = schema_filler
    settings = make_settings(fake_llm, tmp_path / "data")
    settings.privacy.redact_provider_input = True
    core = make_server(settings=settings)
    await call(core, {"query": "card 4111 1111 1111 1111, mail jane.doe@example.com"})
    sent = json.dumps([r.body for r in fake_llm.requests])
    assert len(fake_llm.requests) == 2
    assert "4111 1111" not in sent and "jane.doe" not in sent
    assert "[CARD]" in sent and "[EMAIL]" in sent


def test_log_lines_are_redacted(fake_llm, tmp_path):
    settings = make_settings(fake_llm, tmp_path / "data")
    settings.privacy.redact_pii = True
    stream = io.StringIO()
    try:
        setup_logging(settings, stream=stream, level="info", fmt="json")
        logger.bind(tool="tiny", note="from 203.0.113.42").info("rejected arguments: mail jane@example.com")
        line = json.loads(stream.getvalue().splitlines()[-1])
    finally:
        setup_logging(level="warning")
    assert line["message"] == "rejected arguments: mail [EMAIL]"
    assert line["note"] == "from [IP]" and line["tool"] == "tiny"


def test_log_lines_verbatim_by_default(fake_llm, tmp_path):
    stream = io.StringIO()
    try:
        setup_logging(make_settings(fake_llm, tmp_path / "data"), stream=stream, level="info", fmt="json")
        logger.info("mail jane@example.com")
        line = json.loads(stream.getvalue().splitlines()[-1])
    finally:
        setup_logging(level="warning")
    assert line["message"] == "mail jane@example.com"
