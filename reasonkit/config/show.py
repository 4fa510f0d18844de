"""The effective settings as data for `rk config show`: secrets masked, as a dict or as TOML; and
`mask_url`, the one function that hides the password in a URL wherever settings or provider
endpoints are shown (`rk config show`, `/health` on both ports, `rk providers check`, database
errors). A password typed into `api_base` or a database URL is as secret as an API key, but it
lives in a plain string setting, so masking `SecretStr` fields alone does not catch it."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, SecretStr

from reasonkit.config.schema import NOT_SETTINGS, Settings

__all__ = ["MASK", "mask_url", "mask_urls", "masked_dict", "to_toml"]

MASK = "********"

# scheme://user:password@host: the password (up to the last "@" before the path), parseable or not.
_USERINFO_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/?#\s:@]*:)[^/?#\s]*@")
# ?password=...&api_key=...: secrets passed as query parameters (libpq, some proxies).
_SECRET_PARAM = re.compile(
    r"(?i)([?&](?:password|passwd|pwd|api[_-]?key|key|token|access[_-]?token|secret|sslpassword)=)[^&#\s]*"
)


def mask_url(text: str, mask: str = MASK) -> str:
    """`text` (a URL, or a message with URLs in it) with URL passwords and secret query parameters
    replaced by `mask`. Works on text no URL parser accepts (an unparseable database URL)."""
    if "://" not in text and "=" not in text:
        return text
    return _SECRET_PARAM.sub(rf"\g<1>{mask}", _USERINFO_PASSWORD.sub(rf"\g<1>{mask}@", text))


def mask_urls(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings) with `mask_url` applied to every string."""
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {key: mask_urls(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_urls(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    # Models -> dicts, every SecretStr -> the mask ("" when the secret is empty).
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    return mask_url(value) if isinstance(value, str) else value


def masked_dict(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data with every secret replaced by asterisks."""
    return {
        name: _plain(getattr(settings, name)) for name in Settings.model_fields if name not in NOT_SETTINGS
    }


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_drop_none(item) for item in value]
    return value


def to_toml(settings: Settings) -> str:
    """`masked_dict` as TOML; unset (None) values are left out, as TOML has no null."""
    import tomli_w

    return tomli_w.dumps(_drop_none(masked_dict(settings)))
