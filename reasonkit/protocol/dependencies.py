"""Dependencies between the steps of a protocol and between the entries of a profile's chain: who
waits for whom (used by the checks, the engine's scheduler, the run pages and the estimates)."""

from __future__ import annotations

from reasonkit.protocol.models import Profile, Protocol
from reasonkit.protocol.template import Template

__all__ = ["chain_dependencies", "effective_deps", "find_cycle", "step_ancestors"]


def step_ancestors(deps: dict[str, list[str]], step_id: str) -> set[str]:
    seen: set[str] = set()
    todo = list(deps.get(step_id, []))
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo.extend(deps.get(d, []))
    return seen


def find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        trail.append(n)
        for d in deps.get(n, []):
            if d not in deps:
                continue
            if state.get(d) == 1:
                return trail[trail.index(d) :] + [d]
            if d not in state and (c := visit(d)):
                return c
        trail.pop()
        state[n] = 2
        return None

    for n in deps:
        if n not in state and (c := visit(n)):
            return c
    return None


def effective_deps(p: Protocol) -> dict[str, list[str]]:
    """depends_on plus the step a `for_each` reads from (an implicit dependency)."""
    deps: dict[str, list[str]] = {}
    for s in p.steps:
        d = list(s.depends_on)
        if s.for_each:
            parts = s.for_each.split(".")
            if len(parts) == 3 and parts[1] not in d:
                d.append(parts[1])
        deps[s.id] = d
    return deps


def chain_dependencies(profile: Profile) -> dict[str, list[str]]:
    """Chain entry id -> the earlier entries it waits for, in chain order: those its input templates
    name as `results.<id>`; an entry with `when` waits for every earlier entry (its condition needs
    the confidence so far)."""
    order = [e.entry_id for e in profile.chain]
    deps: dict[str, list[str]] = {}
    for i, entry in enumerate(profile.chain):
        if entry.when is not None:
            deps[entry.entry_id] = order[:i]
            continue
        refs = set()
        for tmpl in entry.inputs.values():
            for path in Template(tmpl).paths():
                parts = path.split(".")
                if parts[0] == "results" and len(parts) > 1:
                    refs.add(parts[1])
        deps[entry.entry_id] = [o for o in order[:i] if o in refs]
    return deps
