"""The graphs of a run: which entries of a profile and which steps of an entry waited for which.

They come from the protocols and profiles (`depends_on`, `for_each`, the chain's `results.<id>`
references) when the registry still has them as they ran; otherwise (a user protocol since
changed or gone) they are inferred from the times in the trace: a step waited for the steps that
had finished when it started (only the latest of them are drawn), and the graph says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reasonkit.engine.answers import CLOSING_ENTRY
from reasonkit.protocol.dependencies import chain_dependencies, effective_deps

if TYPE_CHECKING:
    from reasonkit.presentation import EntryView, RunView, StepView
    from reasonkit.protocol.loader import Registry

EPSILON_S = 0.002  # a step starting within 2 ms of another's end counts as having waited for it


@dataclass
class Dag:
    nodes: list[str]
    deps: dict[str, list[str]]  # node -> the nodes it waited for
    status: dict[str, str] = field(default_factory=dict)
    inferred: bool = False

    def depth(self) -> dict[str, int]:
        """Each node's column: 0 for nodes without dependencies, else one more than the deepest one."""
        out: dict[str, int] = {}

        def visit(node: str, seen: frozenset[str]) -> int:
            if node in out:
                return out[node]
            parents = [d for d in self.deps.get(node, []) if d in self.deps and d not in seen]
            value = 1 + max((visit(d, seen | {node}) for d in parents), default=-1)
            out[node] = value
            return value

        for node in self.nodes:
            visit(node, frozenset())
        return out

    def edges(self) -> list[tuple[str, str]]:
        return [(d, n) for n in self.nodes for d in self.deps.get(n, []) if d in self.deps]


def span(steps: list[StepView]) -> tuple[float | None, float | None]:
    """(first start, last end) of steps and their items, epoch seconds; None when none ran."""
    starts, ends = [], []
    for s in steps:
        for t in [s, *s.items]:
            if t.started_at:
                starts.append(t.started_at)
            if t.finished_at:
                ends.append(t.finished_at)
    return (min(starts) if starts else None, max(ends) if ends else None)


def _inferred(nodes: list[str], times: dict[str, tuple[float | None, float | None]]) -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {}
    depth: dict[str, int] = {}
    order = sorted(nodes, key=lambda n: (times[n][0] is None, times[n][0] or 0.0))
    for node in order:
        start = times[node][0]
        done = [
            other
            for other in depth
            if start is not None and (end := times[other][1]) is not None and end <= start + EPSILON_S
        ]
        deepest = max((depth[d] for d in done), default=-1)
        deps[node] = [d for d in done if depth[d] == deepest]
        depth[node] = deepest + 1
    return {n: deps.get(n, []) for n in nodes}


def step_dag(entry: EntryView, registry: Registry | None) -> Dag:
    nodes = [s.step_id for s in entry.steps]
    status = {s.step_id: s.status for s in entry.steps}
    proto = registry.protocols.get(entry.protocol) if registry is not None else None
    if proto is not None and [s.id for s in proto.steps] == nodes:
        return Dag(nodes, effective_deps(proto), status)
    times = {s.step_id: span([s]) for s in entry.steps}
    return Dag(nodes, _inferred(nodes, times), status, inferred=True)


def entry_dag(run: RunView, registry: Registry | None) -> Dag | None:
    """The chain of a profile run (None for a single protocol run)."""
    if run.kind != "profile":
        return None
    nodes = [e.entry for e in run.entries]
    status = {e.entry: e.status for e in run.entries}
    profile = registry.profiles.get(run.name) if registry is not None else None
    chain = [c.entry_id for c in profile.chain] if profile is not None else None
    if profile is not None and chain == nodes:
        return Dag(nodes, chain_dependencies(profile), status)
    if profile is not None and chain is not None and nodes == [*chain, CLOSING_ENTRY]:
        # the closing step (engine/closing.py) waits for the whole chain
        return Dag(nodes, {**chain_dependencies(profile), CLOSING_ENTRY: chain}, status)
    times = {e.entry: span(e.steps) for e in run.entries}
    return Dag(nodes, _inferred(nodes, times), status, inferred=True)
