"""Load and validate protocol and profile files.

Every problem is reported as a `Problem` (file, field, plain sentence). A bad file never stops the
good ones from loading: the registry keeps what is valid and lists what is not.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reasonkit.errors import (
    TomlFileError,
    UnknownProtocolError,
)
from reasonkit.protocol.checks import Problem, check_profile, check_protocol
from reasonkit.protocol.dependencies import (  # noqa: F401 - re-exported: callers import them from here
    chain_dependencies,
    effective_deps,
)
from reasonkit.protocol.models import Profile, Protocol
from reasonkit.tomlfile import read_toml

__all__ = [
    "PROFILES_FILE",
    "Registry",
    "builtin_dir",
    "load_profiles",
    "load_protocol",
    "load_registry",
    "unknown_name",
    "validate_paths",
]

PROFILES_FILE = "profiles.toml"


def builtin_dir() -> Path:
    """The protocols shipped with ReasonKit: inside the wheel, or the source checkout's top level."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_protocols"
    if packaged.is_dir():
        return packaged
    return here.parent / "protocols"


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pydantic_problems(path: str, err: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for e in err.errors():
        where = _loc(tuple(e["loc"]))
        if prefix:
            where = f"{prefix}.{where}" if where else prefix
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/protocol-authoring.md)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        problems.append(Problem(path, where, msg))
    return problems


def _read_toml(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The file's TOML table, or a problem: unreadable, not UTF-8 (binary, truncated) or not TOML."""
    try:
        return read_toml(path), []
    except TomlFileError as exc:
        return None, [Problem(str(path), "", str(exc))]


def load_protocol(path: Path) -> tuple[Protocol | None, list[Problem]]:
    data, problems = _read_toml(path)
    if data is None:
        return None, problems
    file = str(path)
    try:
        proto = Protocol.model_validate({**data, "source": str(path.resolve())})
    except ValidationError as exc:
        return None, _pydantic_problems(file, exc)
    problems = check_protocol(proto, file)
    return (None if problems else proto), problems


def load_profiles(path: Path) -> tuple[list[Profile], list[Problem]]:
    data, problems = _read_toml(path)
    if data is None:
        return [], problems
    file = str(path)
    table = data.get("profiles")
    if not isinstance(table, dict):
        return [], [Problem(file, "profiles", "must be a table of profiles: [profiles.<id>]")]
    unknown = set(data) - {"profiles"}
    problems = [
        Problem(file, k, "unknown top-level key; profiles live under [profiles.<id>]")
        for k in sorted(unknown)
    ]
    out = []
    for pid, body in table.items():
        if not isinstance(body, dict):
            problems.append(Problem(file, f"profiles.{pid}", "must be a table"))
            continue
        try:
            out.append(Profile.model_validate({**body, "id": pid, "source": str(path.resolve())}))
        except ValidationError as exc:
            problems += _pydantic_problems(file, exc, prefix=f"profiles.{pid}")
    return out, problems


@dataclass
class Registry:
    """The protocols and profiles in effect, plus every problem found while loading them."""

    protocols: dict[str, Protocol] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    overridden: list[str] = field(default_factory=list)

    def protocol(self, pid: str) -> Protocol:
        try:
            return self.protocols[pid]
        except KeyError:
            raise UnknownProtocolError(unknown_name("protocol", pid, self.protocols)) from None

    def profile(self, pid: str) -> Profile:
        try:
            return self.profiles[pid]
        except KeyError:
            raise UnknownProtocolError(unknown_name("profile", pid, self.profiles)) from None


def unknown_name(kind: str, name: str, loaded: Iterable[str]) -> str:
    """ "unknown profile 'balance' (did you mean 'balanced'? loaded: ...)": the nearest loaded name
    (difflib) first, as a typo is the usual cause."""
    names = sorted(loaded)
    near = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return f"unknown {kind} '{name}' ({hint}loaded: {', '.join(names) or 'none'})"


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def load_registry(user_dirs: list[Path] | None = None, include_builtin: bool = True) -> Registry:
    """Built-in protocols first, then each user directory in order; a later file with the same id
    replaces an earlier one. Profiles are merged the same way and checked once all protocols are in."""
    reg = Registry()
    dirs: list[Path] = ([builtin_dir()] if include_builtin else []) + [
        Path(d).expanduser() for d in (user_dirs or [])
    ]
    profile_files: list[Path] = []
    for d in dirs:
        if not d.exists():
            continue
        if not d.is_dir():
            reg.problems.append(Problem(str(d), "", "is not a directory"))
            continue
        seen_here: dict[str, str] = {}
        for f in _files(d):
            if f.name == PROFILES_FILE:
                profile_files.append(f)
                continue
            proto, probs = load_protocol(f)
            reg.problems += probs
            if proto is None:
                continue
            if proto.id in seen_here:
                reg.problems.append(
                    Problem(
                        str(f), "id", f"duplicate protocol id '{proto.id}' (also in {seen_here[proto.id]})"
                    )
                )
                continue
            seen_here[proto.id] = str(f)
            if proto.id in reg.protocols:
                reg.overridden.append(f"{proto.id}: {reg.protocols[proto.id].source} -> {proto.source}")
            reg.protocols[proto.id] = proto
    for f in profile_files:
        profiles, probs = load_profiles(f)
        reg.problems += probs
        for prof in profiles:
            reg.profiles[prof.id] = prof
    for pid, prof in list(reg.profiles.items()):
        probs = check_profile(prof, reg.protocols, prof.source)
        if probs:
            reg.problems += probs
            del reg.profiles[pid]
    return reg


def validate_paths(paths: list[Path]) -> tuple[Registry, list[Problem]]:
    """For `rk protocols validate PATH...`: files or directories. Profiles are checked against the
    built-in protocols plus any protocols among the given paths."""
    files: list[Path] = []
    problems: list[Problem] = []
    for p in paths:
        if p.is_dir():
            files += _files(p)
        elif p.is_file():
            files.append(p)
        else:
            problems.append(Problem(str(p), "", "does not exist"))
    reg = load_registry([])
    seen: dict[str, str] = {}
    profile_files = []
    for f in files:
        if f.name == PROFILES_FILE:
            profile_files.append(f)
            continue
        proto, probs = load_protocol(f)
        problems += probs
        if proto:
            if proto.id in seen:
                problems.append(
                    Problem(str(f), "id", f"duplicate protocol id '{proto.id}' (also in {seen[proto.id]})")
                )
            seen[proto.id] = str(f)
            reg.protocols[proto.id] = proto
    for f in profile_files:
        profiles, probs = load_profiles(f)
        problems += probs
        for prof in profiles:
            probs = check_profile(prof, reg.protocols, str(f))
            problems += probs
            if not probs:
                reg.profiles[prof.id] = prof
    return reg, problems
