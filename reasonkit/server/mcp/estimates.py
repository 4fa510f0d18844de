"""What a ThinkTool or a profile costs, computed from its protocols: model calls and sequential rounds.

A step makes `samples` calls, times the items of the list it runs `for_each` over (bounded by that
list's `min_items` / `max_items`); samples and items run side by side. A round is one step on the
longest chain of dependencies (a profile: the longest chain of entries, each its protocol's rounds).
A profile entry with `when` may be skipped, so it counts only towards the upper bound. Repair calls
(one per reply that fails its schema) are not counted.

The time is rounds x `ROUND_SECS`: one model call of a few thousand output tokens on a hosted model.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonkit.protocol.dependencies import chain_dependencies, effective_deps
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import Profile, Protocol, Step

#: Seconds one round takes with a hosted model (fast, slow): an estimate, not a measurement.
ROUND_SECS = (5, 15)
#: Items assumed for a `for_each` over a list with no `max_items`.
DEFAULT_ITEMS = 8


@dataclass(frozen=True)
class Estimate:
    calls_min: int
    calls_max: int
    rounds: int

    def calls(self) -> str:
        lo, hi = self.calls_min, self.calls_max
        return f"{lo} model calls" if lo == hi else f"{lo}-{hi} model calls"

    def seconds(self) -> tuple[int, int]:
        return self.rounds * ROUND_SECS[0], self.rounds * ROUND_SECS[1]

    def text(self) -> str:
        """E.g. "12-14 model calls, ~15-45 s"."""
        lo, hi = self.seconds()
        return f"{self.calls()}, ~{_duration(lo, hi)}"


def _duration(lo: int, hi: int) -> str:
    if hi < 120:
        return f"{lo}-{hi} s"
    return f"{lo / 60:.0f}-{hi / 60:.0f} min" if lo >= 60 else f"{lo} s-{hi / 60:.0f} min"


def _items(proto: Protocol, step: Step) -> tuple[int, int]:
    if not step.for_each:
        return 1, 1
    parts = step.for_each.split(".")
    try:
        source = proto.step(parts[1])
    except (IndexError, KeyError):
        return 1, DEFAULT_ITEMS
    lo = source.min_items or 1
    return lo, max(lo, source.max_items or DEFAULT_ITEMS)


def protocol_estimate(proto: Protocol) -> Estimate:
    lo = hi = 0
    for step in proto.steps:
        items = _items(proto, step)
        lo += step.samples * items[0]
        hi += step.samples * items[1]
    return Estimate(lo, hi, _longest(effective_deps(proto), {s.id: 1 for s in proto.steps}))


def profile_estimate(profile: Profile, registry: Registry) -> Estimate:
    lo = hi = 0
    rounds: dict[str, int] = {}
    for entry in profile.chain:
        proto = registry.protocols.get(entry.protocol)
        if proto is None:  # a profile naming a protocol that is not loaded (the registry reports it)
            continue
        est = protocol_estimate(proto)
        hi += est.calls_max
        if entry.when is None:
            lo += est.calls_min
        rounds[entry.entry_id] = est.rounds
    return Estimate(lo, hi, _longest(chain_dependencies(profile), rounds))


def _longest(deps: dict[str, list[str]], weight: dict[str, int]) -> int:
    """The heaviest path through a dependency graph (acyclic: the loader checked it)."""
    memo: dict[str, int] = {}

    def depth(node: str) -> int:
        if node not in memo:
            memo[node] = weight.get(node, 0) + max((depth(d) for d in deps.get(node, [])), default=0)
        return memo[node]

    return max((depth(n) for n in deps), default=0)
