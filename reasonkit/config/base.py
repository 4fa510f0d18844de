"""What every settings table shares: unknown keys are errors, assignments are validated."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _comma_list(value: Any) -> Any:
    # "a, b" (environment variables, a single TOML string) -> ["a", "b"]; lists pass through.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A list of strings that may also be given as one comma-separated string.
CommaList = Annotated[list[str], BeforeValidator(_comma_list)]


class Section(BaseModel):
    """Base of every settings table."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
