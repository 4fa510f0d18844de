"""The PII detectors against a table: values written the ways people (and attackers) write them, and
look-alikes that must stay as they are.

Each positive is put in a sentence and must come back as exactly its marker; each negative must
come back unchanged. The positives cover what slipped through before: lower-case or spaced IBANs,
cards split by no-break spaces, tabs or dots, internationalised and quoted-local e-mail addresses,
zero-width characters inside values, `1-800` numbers and IPv4-mapped IPv6 addresses.
"""

from __future__ import annotations

import pytest

from reasonkit.observability.redaction import normalise, redact_pii

ZW = "\u200b"  # zero-width space
ZWJ = "\u200d"  # zero-width joiner
NBSP = "\u00a0"
NNBSP = "\u202f"  # narrow no-break space

POSITIVES: list[tuple[str, str]] = [
    # e-mail addresses
    ("jane.doe@example.com", "[EMAIL]"),
    ("JANE.DOE+billing@Example-Mail.co.uk", "[EMAIL]"),
    ("o'brien@example.ie", "[EMAIL]"),
    ("jörg.müller@bücher.de", "[EMAIL]"),
    ("用户@例子.广告", "[EMAIL]"),
    ("пользователь@пример.рф", "[EMAIL]"),
    ("δοκιμή@παράδειγμα.δοκιμή", "[EMAIL]"),
    ("user@xn--bcher-kva.de", "[EMAIL]"),
    ("user@mail.xn--p1ai", "[EMAIL]"),
    ('"john doe"@example.com', "[EMAIL]"),
    ('"a@b"@example.org', "[EMAIL]"),
    ('"very.(),:;<>[]\\".unusual"@strange.example.com', "[EMAIL]"),
    (f"jane{ZW}.doe@example.com", "[EMAIL]"),
    (f"jane.doe@exa{ZWJ}mple.com", "[EMAIL]"),
    ("jane.doe\uff20example.com", "[EMAIL]"),  # full-width @
    ("first_last-2@sub.domain.example.museum", "[EMAIL]"),
    # IBANs
    ("DE89 3704 0044 0532 0130 00", "[IBAN]"),
    ("DE89370400440532013000", "[IBAN]"),
    ("de89 3704 0044 0532 0130 00", "[IBAN]"),
    ("de89370400440532013000", "[IBAN]"),
    ("De89 3704 0044 0532 0130 00", "[IBAN]"),
    ("DE 89 3704 0044 0532 0130 00", "[IBAN]"),
    ("de 89 3704 0044 0532 0130 00", "[IBAN]"),
    ("DE89-3704-0044-0532-0130-00", "[IBAN]"),
    (f"DE89{NBSP}3704{NBSP}0044{NBSP}0532{NBSP}0130{NBSP}00", "[IBAN]"),
    ("DE89\t3704\t0044\t0532\t0130\t00", "[IBAN]"),
    (f"DE89{ZW}3704{ZW}0044{ZW}0532{ZW}0130{ZW}00", "[IBAN]"),
    ("gb82 west 1234 5698 7654 32", "[IBAN]"),
    ("fr14 2004 1010 0505 0001 3m02 606", "[IBAN]"),
    ("ＤＥ８９３７０４００４４０５３２０１３０００", "[IBAN]"),  # full-width
    # card numbers
    ("4111 1111 1111 1111", "[CARD]"),
    ("4111-1111-1111-1111", "[CARD]"),
    ("4111111111111111", "[CARD]"),
    (f"4111{NBSP}1111{NBSP}1111{NBSP}1111", "[CARD]"),
    (f"4111{NNBSP}1111{NNBSP}1111{NNBSP}1111", "[CARD]"),
    ("4111\t1111\t1111\t1111", "[CARD]"),
    ("4111.1111.1111.1111", "[CARD]"),
    (f"4111{ZW}1111{ZW}1111{ZW}1111", "[CARD]"),
    (f"41{ZWJ}11 1111 1111 1111", "[CARD]"),
    ("5555 5555 5555 4444", "[CARD]"),
    ("3782 822463 10005", "[CARD]"),
    ("6011 1111 1111 1117", "[CARD]"),
    ("４１１１ １１１１ １１１１ １１１１", "[CARD]"),  # full-width digits
    # IP addresses
    ("203.0.113.42", "[IP]"),
    ("::ffff:10.20.30.40", "[IP]"),
    ("::FFFF:192.0.2.128", "[IP]"),
    ("64:ff9b::192.0.2.33", "[IP]"),
    ("2001:db8:85a3::8a2e:370:7334", "[IP]"),
    ("fe80::1ff:fe23:4567:890a", "[IP]"),
    (f"203.0.{ZW}113.42", "[IP]"),
    ("２０３.０.１１３.４２", "[IP]"),
    # phone numbers
    ("+44 20 7946 0958", "[PHONE]"),
    ("+1 (555) 123-4567", "[PHONE]"),
    ("1-800-555-0199", "[PHONE]"),
    ("1 800 555 0199", "[PHONE]"),
    ("1 (800) 555-0199", "[PHONE]"),
    ("1.888.555.0123", "[PHONE]"),
    ("1-800-FLOWERS", "[PHONE]"),
    ("1-800-GO-FEDEX", "[PHONE]"),
    ("(555) 123-4567", "[PHONE]"),
    ("555-123-4567", "[PHONE]"),
    (f"+44{NBSP}20{NBSP}7946{NBSP}0958", "[PHONE]"),
    (f"+44 20 79{ZW}46 0958", "[PHONE]"),
    ("＋４４ ２０ ７９４６ ０９５８", "[PHONE]"),
]

NEGATIVES: list[str] = [
    # look like e-mail addresses
    "reach me @jane on the forum",
    "ssh user@host to log in",
    "the @decorator syntax, e.g. @dataclass",
    "email: jane.doe at example dot com",
    "git@ is the user part only",
    "price 5@10 each, 3 @ 4 total",
    # look like IBANs
    "to 12 people in the area of the world",
    "DE89 3704 0044 0532 0130 01 (checksum fails)",
    "de89 3704 0044 0532 0130 01",
    "Ab12 cdef ghij klmn opqr st",
    "the mb12 model and the xp34 design of thirteen",
    "ISBN 978-3-16-148410-0",
    "code GB82 is not an account",
    # look like card numbers
    "card 4111 1111 1111 1112 was declined",
    "order 1234567890123456 shipped",
    "reference 79927398713",
    "tracking 1Z999AA10123456784",
    "version 4.1.1.1.2 of the tool",
    "3.14159265358979 is pi",
    "4111.11 and 1111.11 are totals",
    "serial 9999 9999 9999 9995",
    "row\t1\t2\t3\t4\t5\t6\t7\t8\t9\t10",
    "build 2024.03.15.1",
    # look like IP addresses
    "Python 3.11.4 and semver 1.2.3-rc.1",
    "release v10.0.0.1",
    "not an address: 999.1.1.1 or 1.2.3",
    "MAC 00:1A:2B:3C:4D:5E",
    "time 12:30:45 and ratio 16:9",
    "hash deadbeef:cafe",
    "C++ scope std::vector and a::b::c",
    "CSS selector a::before and p::first-line",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    # look like phone numbers
    "Order #100234987, placed 2024-03-15.",
    "Dates 15.03.2024 and 03/15/2024",
    "Total $1,234.56 for 3 x 4.99 EUR",
    "invoice INV-2024-000123",
    "call 5551234567 (unbroken digits are not found)",
    "chapter 1, 800 pages",
    "1-800 numbers are toll free",
    "grade 1 800 words essay, 1-800 words",
    "scores 1-8, 2-9 and 3-7",
    "page 12 of 345",
    "1800 people in 1800",
    # unicode that normalisation must not turn into false positives
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "full-width words ＡＢＣ and ｘｙｚ",
    "zero\u200bwidth\u200bjoined words",
    "no digits at all, just words.",
    "emoji 🎉 and math ∑ x²",
    "Ⅻ o'clock and ① ② ③",
    "ﬁnance ligature",
    "spaces\u00a0no\u00a0break",
]


def test_table_sizes():
    assert len(POSITIVES) >= 50 and len(NEGATIVES) >= 50


@pytest.mark.parametrize(("value", "marker"), POSITIVES)
def test_positive(value: str, marker: str) -> None:
    assert redact_pii(f"see {value}, thanks") == f"see {marker}, thanks"


@pytest.mark.parametrize("text", NEGATIVES)
def test_negative(text: str) -> None:
    assert redact_pii(text) == text


def test_normalise_removes_invisible_and_folds_width() -> None:
    assert normalise(f"a{ZW}b{ZWJ}c\u2060d\ufeffe\u00adf") == "abcdef"
    assert normalise(f"４１{NBSP}１＠") == "41 1@"
