"""PII redaction (opt-in, `[privacy] redact_pii`): pure functions that replace personal data in text
with a marker naming what was there.

    redact_pii("mail jane.doe@example.com or call +44 20 7946 0958")
        -> "mail [EMAIL] or call [PHONE]"

| marker    | what                                                 | checked beyond the pattern              |
|-----------|------------------------------------------------------|-----------------------------------------|
| `[EMAIL]` | `local@domain.tld`, any script, quoted local parts   | -                                       |
| `[IBAN]`  | country code, 2 check digits, 11-30 letters/digits;  | ISO 7064 mod-97 checksum                |
|           | lower case too when compact or grouped by four       |                                         |
| `[CARD]`  | 13-19 digits, optionally grouped by spaces, tabs,    | Luhn checksum, issuer prefix and length |
|           | hyphens or dots                                      |                                         |
| `[IP]`    | IPv4 dotted quads and IPv6 addresses (IPv4-mapped    | parsed by `ipaddress`                   |
|           | ones such as `::ffff:10.20.30.40` included)          |                                         |
| `[PHONE]` | `+` and 8-15 digits, grouped national numbers, North | digit count                             |
|           | American `1-800-...` numbers (vanity letters too)    |                                         |

Text is normalised before matching (`normalise`: NFKC, so full-width digits and no-break spaces
count as digits and spaces, and zero-width characters removed), so `4111\u200b1111...` or
`jane\u200d@example.com` cannot slip through. When something is found the normalised text is what
comes back; text with nothing to redact is returned exactly as given.

Limits (documented in docs/operations.md): phone numbers written as one unbroken run of digits
without `+` (`5551234567`) are not found (they cannot be told from order numbers); a 4-part version
string that is also a valid IPv4 address (`10.0.0.1`) is redacted unless written with a `v` prefix;
names, postal addresses and national ID numbers are not detected.

Layer 1: no reasonkit imports beyond the standard library.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from typing import Any

__all__ = [
    "CARD",
    "EMAIL",
    "IBAN",
    "IP",
    "PHONE",
    "card_number_ok",
    "iban_ok",
    "luhn_ok",
    "normalise",
    "redact_pii",
    "redact_value",
]

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
IBAN = "[IBAN]"
IP = "[IP]"

# Characters that render as nothing (zero-width space/joiners, word joiner, BOM, soft hyphen, ...):
# removed before matching, so they cannot split a value into pieces that no pattern recognises.
_INVISIBLE_RE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\ufe00-\ufe0f\ufeff]"
)
_ATEXT = r"[\w!#$%&'*+/=?^`{|}~-]"  # the characters of an unquoted local part (RFC 5322), any script
_EMAIL_RE = re.compile(
    rf"(?:(?<![\w.!#$%&'*+/=?^`{{|}}~-]){_ATEXT}(?:\.?{_ATEXT}){{0,63}}"  # dot-atom local part
    r'|"(?:[^"\\\r\n]|\\.){1,64}")'  # or a quoted one: "john doe"@example.com
    r"@[^\W_](?:[\w-]{0,62}[^\W_])?(?:\.[^\W_](?:[\w-]{0,62}[^\W_])?)*"
    r"\.(?:[^\W\d_]{2,24}|xn--[a-z0-9-]{1,59})(?![\w-])"
)
# An IBAN: two letters, two check digits, then 11-30 letters/digits. Upper case may be spaced anyhow;
# any case when compact or printed in groups of four (separated by spaces, tabs or hyphens), so that
# ordinary words around two digits ("to 12 people in the ...") are never checked against mod-97.
_IBAN_RE = re.compile(
    r"\b(?:[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}"
    r"|[A-Za-z]{2}[ \t-]?\d{2}(?:[ \t-][A-Za-z0-9]{4}){2,7}(?:[ \t-][A-Za-z0-9]{1,4})?"
    r"|[A-Za-z]{2}\d{2}[A-Za-z0-9]{11,30})\b"
)
_IBAN_SEPARATORS = " \t-"
# Digits grouped by single spaces, tabs, hyphens or dots, 13 to 19 of them.
_CARD_RE = re.compile(r"(?<![\w.,/-])\d(?:[ \t.-]?\d){12,18}(?![\w]|[.,/-]\d)")
_IPV4_RE = re.compile(
    r"(?<![\w.])(?<![vV])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
# IPv6, with an embedded IPv4 tail (`::ffff:10.20.30.40`) tried first so the tail goes with it.
_IPV6_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4}|:)?(?![\w:]|\.\d)"
)
_PHONE_INTL_RE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,7}(?!\w|[.-]\d)")
_PHONE_NATIONAL_RE = re.compile(
    r"(?<![\w.+/-])(?<!\d )(?:1[ .-]?(?=\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}))?"  # North American trunk 1
    r"(?:\(\d{2,5}\)[ .-]?|\d{2,5}[ .-])\d{3,4}[ .-]\d{3,4}(?!\w|[ ./-]\d)"
)
# North American toll-free numbers spelled with letters: 1-800-FLOWERS, 1 (888) GO-FEDEX.
_PHONE_VANITY_RE = re.compile(
    r"(?<![\w+-])1[ .-]?\(?8(?:00|33|44|55|66|77|88)\)?[ .-]?(?:[0-9A-Z][ .-]?){6}[0-9A-Z]\b"
)

# Card-issuer prefixes (IIN ranges) of the networks in common use: a Luhn-valid number that starts
# with none of them (an order number, an ID) is left alone.
_ANY = range(13, 20)
_CARD_PREFIXES: tuple[tuple[int, int, int, range | tuple[int, ...]], ...] = (
    # (prefix length, low, high, lengths of the network's numbers)
    (1, 4, 4, (13, 16, 19)),  # Visa
    (2, 51, 55, (16,)),  # Mastercard
    (4, 2221, 2720, (16,)),  # Mastercard 2-series
    (2, 34, 34, (15,)),  # American Express
    (2, 37, 37, (15,)),
    (2, 36, 36, range(14, 20)),  # Diners Club
    (2, 38, 39, range(14, 20)),
    (3, 300, 305, range(14, 20)),
    (4, 6011, 6011, range(16, 20)),  # Discover
    (3, 644, 649, range(16, 20)),
    (2, 65, 65, range(16, 20)),
    (4, 3528, 3589, range(16, 20)),  # JCB
    (2, 62, 62, range(16, 20)),  # UnionPay
    (2, 50, 50, _ANY),  # Maestro
    (2, 56, 58, _ANY),
    (2, 67, 67, _ANY),
)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_number_ok(digits: str) -> bool:
    """13-19 digits, a card-issuer prefix with a length its network uses, and a valid Luhn checksum."""
    if not (13 <= len(digits) <= 19 and digits.isdigit()):
        return False
    size = len(digits)
    if not any(lo <= int(digits[:n]) <= hi and size in sizes for n, lo, hi, sizes in _CARD_PREFIXES):
        return False
    return luhn_ok(digits)


def iban_ok(text: str) -> bool:
    """An IBAN (spaces allowed) whose ISO 7064 mod-97 checksum is valid."""
    compact = re.sub(r"[ \t-]", "", text).upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    moved = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in moved))
    except ValueError:
        return False
    return number % 97 == 1


def _card(match: re.Match[str]) -> str:
    """The longest card number at the start of a run of digit groups (a card followed by more digits,
    such as an expiry date, is still found); the run unchanged when there is none."""
    text = match.group(0)
    ends = [i + 1 for i, ch in enumerate(text) if ch.isdigit()]  # end offset after each digit
    for count in range(min(19, len(ends)), 12, -1):
        end = ends[count - 1]
        if end < len(text) and text[end].isdigit():
            continue  # not at a group boundary
        if card_number_ok("".join(ch for ch in text[:end] if ch.isdigit())):
            return CARD + text[end:]
    return text


def _iban(match: re.Match[str]) -> str:
    text = match.group(0)
    # The pattern may run into a following word; try the longest checksum-valid prefix.
    for end in range(len(text), 14, -1):
        at_boundary = end == len(text) or text[end] in _IBAN_SEPARATORS
        if text[end - 1] not in _IBAN_SEPARATORS and at_boundary:
            if iban_ok(text[:end]):
                return IBAN + text[end:]
    return text


def _ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    if not any(ch.isdigit() or ch in "abcdefABCDEF" for ch in text):
        return text
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    return IP


def _phone_intl(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    return PHONE if 8 <= digits <= 15 else text


def _phone_vanity(match: re.Match[str]) -> str:
    """Only numbers with letters: all-digit ones are national numbers (or order numbers, unbroken)."""
    text = match.group(0)
    return PHONE if any(ch.isalpha() for ch in text) else text


def _phone_national(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    return PHONE if 8 <= digits <= 13 else text


_STEPS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_EMAIL_RE, EMAIL),
    (_IBAN_RE, _iban),
    (_CARD_RE, _card),
    (_IPV6_RE, _ipv6),
    (_IPV4_RE, IP),
    (_PHONE_INTL_RE, _phone_intl),
    (_PHONE_VANITY_RE, _phone_vanity),
    (_PHONE_NATIONAL_RE, _phone_national),
)


def normalise(text: str) -> str:
    """`text` as the patterns see it: NFKC (full-width digits, no-break spaces, full-width `@`
    become their plain forms) with invisible characters removed."""
    return _INVISIBLE_RE.sub("", unicodedata.normalize("NFKC", text))


def redact_pii(text: str) -> str:
    """`text` with email addresses, IBANs, card numbers, IP addresses and phone numbers replaced by
    `[EMAIL]`, `[IBAN]`, `[CARD]`, `[IP]` and `[PHONE]` (matched on `normalise(text)`; `text` itself
    when nothing is found)."""
    if not text or not any(ch.isdigit() or ch in "@:\uff20" for ch in text):
        return text  # nothing to find: no digit (of any script), no @, no colon
    plain = normalise(text)
    redacted = plain
    for pattern, replacement in _STEPS:
        redacted = pattern.sub(replacement, redacted)
    return text if redacted == plain else redacted


def redact_value(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string redacted; dict keys and
    non-string values are kept."""
    if isinstance(value, str):
        return redact_pii(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value
