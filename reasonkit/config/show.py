"""The effective settings as data for `rk config show`: secrets masked, as a dict or as TOML."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr

from reasonkit.config.schema import NOT_SETTINGS, Settings

MASK = "********"


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
    return value


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
