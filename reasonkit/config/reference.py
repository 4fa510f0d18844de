"""Documentation generated from the settings model: `rk config init` and `rk config reference`.

`tables()` is the one walk of the model; `default_config_text` (a commented TOML file) and
`reference_markdown` (docs/configuration.md's generated part) only render what it yields, so both
cover every setting exactly once.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from reasonkit.config.loading import ENV_VARS
from reasonkit.config.schema import NOT_SETTINGS, Settings
from reasonkit.errors import ConfigError

# Stands for the table name the user chooses in tables such as `[llm.providers.<name>]`.
NAME_PLACEHOLDER = "<name>"


@dataclass(frozen=True)
class Setting:
    """One documented key. `env`: (variable, table name it sets, or None) for each environment variable."""

    key: str
    name: str
    field: FieldInfo
    env: tuple[tuple[str, str | None], ...]

    @property
    def default(self) -> Any:
        return self.field.get_default(call_default_factory=True)


@dataclass(frozen=True)
class Table:
    """One TOML table. `named`: one such table per name the user chooses (`path` holds `<name>`)."""

    path: str
    settings: tuple[Setting, ...]
    named: bool
    description: str | None


def _table_model(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    # A field is a table when it is a section model, or a dict of them keyed by a name the user picks.
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is dict and len(args) == 2:
        value = args[1]
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value, True
    return None


def _env_for(key: str) -> tuple[tuple[str, str | None], ...]:
    if NAME_PLACEHOLDER not in key:
        return tuple((var, None) for var, target in ENV_VARS.items() if target == key)
    head, tail = key.split(NAME_PLACEHOLDER, 1)
    found = []
    for var, target in ENV_VARS.items():
        name = target[len(head) : len(target) - len(tail)]
        if target.startswith(head) and target.endswith(tail) and name and "." not in name:
            found.append((var, name))
    return tuple(found)


def tables(
    model: type[BaseModel] = Settings,
    path: str = "",
    named: bool = False,
    description: str | None = None,
) -> Iterator[Table]:
    """Every table of the model, depth first, each followed by its sub-tables (in field order)."""
    own: list[Setting] = []
    subs: list[tuple[str, type[BaseModel], bool, str | None]] = []
    for name, field in model.model_fields.items():
        if name in NOT_SETTINGS:
            continue
        key = f"{path}.{name}" if path else name
        table = _table_model(field.annotation)
        if table is None:
            own.append(Setting(key, name, field, _env_for(key)))
        else:
            sub, is_named = table
            sub_path = f"{key}.{NAME_PLACEHOLDER}" if is_named else key
            subs.append((sub_path, sub, named or is_named, field.description))
    yield Table(path, tuple(own), named, description)
    for sub_path, sub, sub_named, sub_description in subs:
        yield from tables(sub, sub_path, sub_named, sub_description)


def type_name(annotation: Any) -> str:
    """A type as the docs write it: `a` / `b` for literals, "(optional)" for None-able ones."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " / ".join(f"`{arg}`" for arg in args)
    if args and origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in args if arg is not type(None)) + " (optional)"
    if origin in (list, dict):
        return f"{origin.__name__} of {', '.join(type_name(arg) for arg in args)}"
    return getattr(annotation, "__name__", str(annotation)).replace("SecretStr", "secret string")


def _env_text(setting: Setting, quote: str) -> str:
    return ", ".join(f"{quote}{var}{quote}" + (f" ({name})" if name else "") for var, name in setting.env)


# ---- `rk config init` ----


# Example values for settings without a default, so every commented key in `rk config init`'s file
# is valid TOML and a valid setting once uncommented (a test uncomments them all and loads the file).
EXAMPLES: dict[str, str] = {  # TOML values
    "tool_deadline_secs": "50",
    "confirm_above_usd": "0.50",
    "metrics_port": "9101",
    "file": '"/var/log/reasonkit/reasonkit.log"',
    "logging.level": '"warning"',
    "default_provider": '"openai"',
    "default_model": '"gpt-4.1-mini"',
    "prices": '{ "my-model" = { input = 1.0, output = 2.0 } }',
    "api_key": '"prefer-the-environment-variable"',
    "api_base": '"http://127.0.0.1:11434/v1"',
    "model": '"llama3.1"',
    "kind": '"openai"',
    "output_mode": '"auto"',
    "requests_per_minute": "60",
    "model_path": '"/models/model.gguf"',
    "n_threads": "4",
    "url": '"redis://127.0.0.1:6379/0"',
    "storage.url": '"postgresql://reasonkit:password@db.internal:5432/reasonkit"',  # by table.key
    "auth_tokens_file": '"/etc/reasonkit/tokens"',
    "server.oauth.issuer": '"https://idp.example.com/realms/reasonkit"',
    "server.oauth.audience": '"https://rk.example.com/mcp"',
    "rate_limit_per_minute": "120",
    "data_dir": '"/var/lib/reasonkit"',
    "retention_days": "30",
    "max_runs": "10000",
    "budget_secs": "120",
    "budget_tokens": "200000",
    "budget_usd": "0.5",
    "endpoint": '"http://127.0.0.1:4318"',
    "max_connections": "10",
    "server.max_concurrent_runs": "64",
    "server.max_concurrent_runs_cluster": "256",
    "server.max_runs_per_principal": "8",
    "server.max_inflight_provider_calls": "256",
}


def default_config_text() -> str:
    """A commented default config file for `rk config init`: every key with its description."""
    import tomli_w

    lines = [
        "# ReasonKit configuration. Precedence: defaults < this file < environment < CLI flags.",
        "# Keep API keys in the environment (ANTHROPIC_API_KEY, OPENAI_API_KEY, OPENROUTER_API_KEY).",
        "",
    ]
    for table in tables():
        if not table.settings:
            continue
        # A named table cannot be written with a placeholder name: it is shown commented out.
        comment = "# " if table.named else ""
        if table.description:
            lines.append(f"# {table.description}")
        if table.path:
            lines.append(f"{comment}[{table.path}]")
        for setting in table.settings:
            env = _env_text(setting, "")
            description = (setting.field.description or "") + (f" Env: {env}." if env else "")
            if description:
                lines.append(f"# {description.strip()}")
            default = setting.default
            if default is None or isinstance(default, SecretStr) or default == {}:
                example = EXAMPLES.get(f"{table.path}.{setting.name}", EXAMPLES.get(setting.name))
                if example is None:
                    raise ConfigError(f"no example value for setting '{setting.name}' (config/reference.py)")
                lines.append(f"# {setting.name} = {example}")
            else:
                lines.append(comment + tomli_w.dumps({setting.name: default}).strip())
        lines.append("")
    return "\n".join(lines)


# ---- `rk config reference` ----


def _markdown_default(setting: Setting) -> str:
    default = setting.default
    if default is None or (isinstance(default, dict | list) and not default):
        return ""
    if isinstance(default, str):
        return f'`"{default}"`'
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md's generated part), from the model itself."""
    out: list[str] = []
    for table in tables():
        if not table.settings:
            continue
        out.append(f"### `[{table.path}]`" if table.path else "### top level")
        out.append("")
        if table.description:
            out += [table.description, ""]
        out.append("| key | type | default | environment | meaning |")
        out.append("|---|---|---|---|---|")
        for setting in table.settings:
            field = setting.field
            out.append(
                f"| `{setting.name}` | {type_name(field.annotation)} | {_markdown_default(setting)} "
                f"| {_env_text(setting, '`')} | {field.description or ''} |"
            )
        out.append("")
    return "\n".join(out)
