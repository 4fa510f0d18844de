"""What a ThinkTool or a profile costs, computed from its protocols: model calls and sequential rounds.

A step makes `samples` calls, times the items of the list it runs `for_each` over (bounded by that
list's `min_items` / `max_items`); samples and items run side by side. A round is one step on the
longest chain of dependencies (a profile: the longest chain of entries, each its protocol's rounds).
A profile entry with `when` may be skipped, so it counts only towards the upper bound; a profile's
closing step is one more call and round. Repair calls (one per reply that fails its schema) are not
counted.

The time comes from the configured provider's kind (`call_secs`, `serial` in
reasonkit/provider_kinds.py, as a `Pace`): rounds x seconds per call for a hosted model, whose
parallel calls overlap; calls x seconds per call for a serial one (the embedded model runs one call
at a time on this machine, with the small-model caps of `[llm.local]` shrinking the calls).

The default deadline of a call (`deadline_for`) is the tool's slow estimate plus a tenth, at least
`MIN_DEADLINE_S` (what clients with a ~60 s timeout can wait for) and at most `MAX_AUTO_DEADLINE_S`,
unless `[server] tool_deadline_secs` sets one for every tool: a deadline under the estimate cut every
embedded-model call short, while one over it only waits for a run that is still working.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reasonkit import provider_kinds
from reasonkit.config import Settings
from reasonkit.errors import NoProviderConfigured
from reasonkit.protocol.dependencies import chain_dependencies, effective_deps
from reasonkit.protocol.loader import Registry
from reasonkit.protocol.models import Profile, Protocol, Step

#: Items assumed for a `for_each` over a list with no `max_items`.
DEFAULT_ITEMS = 8
#: The default deadline: the slow estimate times this, within these bounds (seconds).
DEADLINE_MARGIN = 1.1
MIN_DEADLINE_S = 50.0
MAX_AUTO_DEADLINE_S = 600.0


@dataclass(frozen=True)
class Pace:
    """How fast the configured provider answers: seconds per model call (fast, slow), whether its
    calls run one at a time, and the small-model caps its runs get (0: none)."""

    kind: str
    call_secs: tuple[float, float] = (5.0, 15.0)
    serial: bool = False
    max_items: int = 0
    samples: int = 0

    def note(self) -> str:
        """What the estimate assumes, when it is not a hosted model's pace."""
        return " on the embedded model, one call at a time" if self.serial else ""


HOSTED = Pace("hosted")


def pace_for(settings: Settings) -> Pace:
    """The pace of the provider a run would use (its kind's row); a hosted pace when none is
    configured (client sampling: the client's model)."""
    from reasonkit.providers import choose_provider_name  # the providers package, at the first listing

    try:
        name = choose_provider_name(settings)
    except NoProviderConfigured:
        return HOSTED
    table = settings.llm.providers.get(name)
    row = provider_kinds.KINDS.get(table.kind if table is not None and table.kind else name)
    if row is None:
        return HOSTED
    local = settings.llm.local
    caps = row.in_process  # the small-model caps apply to in-process models (engine/caps.py)
    return Pace(
        row.name, row.call_secs, row.serial, local.max_items if caps else 0, local.samples if caps else 0
    )


@dataclass(frozen=True)
class Estimate:
    calls_min: int
    calls_max: int
    rounds: int

    def calls(self) -> str:
        lo, hi = self.calls_min, self.calls_max
        return f"{lo} model calls" if lo == hi else f"{lo}-{hi} model calls"

    def seconds(self, pace: Pace = HOSTED) -> tuple[int, int]:
        fast, slow = pace.call_secs
        lo, hi = (self.calls_min, self.calls_max) if pace.serial else (self.rounds, self.rounds)
        return math.ceil(lo * fast), math.ceil(hi * slow)

    def text(self, pace: Pace = HOSTED) -> str:
        """E.g. "12-14 model calls, ~15-45 s" (and the pace, when it is not a hosted model's)."""
        lo, hi = self.seconds(pace)
        return f"{self.calls()}, ~{_duration(lo, hi)}{pace.note()}"


def deadline_for(est: Estimate, pace: Pace, configured: float | None) -> float:
    """A call's default deadline: `[server] tool_deadline_secs` when set, else the slow estimate
    with margin, within [MIN_DEADLINE_S, MAX_AUTO_DEADLINE_S] (the module docstring says why)."""
    if configured is not None:
        return configured
    with_margin = float(
        round(est.seconds(pace)[1] * DEADLINE_MARGIN)
    )  # whole seconds: 99, not 99.00000000000001
    return min(MAX_AUTO_DEADLINE_S, max(MIN_DEADLINE_S, with_margin))


def _duration(lo: int, hi: int) -> str:
    if hi < 120:
        return f"{lo}-{hi} s"
    return f"{lo / 60:.0f}-{hi / 60:.0f} min" if lo >= 60 else f"{lo} s-{hi / 60:.0f} min"


def _items(proto: Protocol, step: Step, cap: int) -> tuple[int, int]:
    if not step.for_each:
        return 1, 1
    parts = step.for_each.split(".")
    try:
        source = proto.step(parts[1])
    except (IndexError, KeyError):
        lo, hi = 1, DEFAULT_ITEMS
    else:
        lo = source.min_items or 1
        hi = max(lo, source.max_items or DEFAULT_ITEMS)
    return (min(lo, cap), min(hi, cap)) if cap else (lo, hi)


def protocol_estimate(proto: Protocol, pace: Pace = HOSTED) -> Estimate:
    lo = hi = 0
    for step in proto.steps:
        items = _items(proto, step, pace.max_items)
        samples = min(step.samples, pace.samples) if pace.samples else step.samples
        lo += samples * items[0]
        hi += samples * items[1]
    return Estimate(lo, hi, _longest(effective_deps(proto), {s.id: 1 for s in proto.steps}))


def profile_estimate(profile: Profile, registry: Registry, pace: Pace = HOSTED) -> Estimate:
    lo = hi = 0
    rounds: dict[str, int] = {}
    for entry in profile.chain:
        proto = registry.protocols.get(entry.protocol)
        if proto is None:  # a profile naming a protocol that is not loaded (the registry reports it)
            continue
        est = protocol_estimate(proto, pace)
        hi += est.calls_max
        if entry.when is None:
            lo += est.calls_min
        rounds[entry.entry_id] = est.rounds
    closing = 1 if profile.closing_step else 0  # one call after the whole chain (engine/closing.py)
    return Estimate(lo + closing, hi + closing, _longest(chain_dependencies(profile), rounds) + closing)


def _longest(deps: dict[str, list[str]], weight: dict[str, int]) -> int:
    """The heaviest path through a dependency graph (acyclic: the loader checked it)."""
    memo: dict[str, int] = {}

    def depth(node: str) -> int:
        if node not in memo:
            memo[node] = weight.get(node, 0) + max((depth(d) for d in deps.get(node, [])), default=0)
        return memo[node]

    return max((depth(n) for n in deps), default=0)
