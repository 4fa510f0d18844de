"""Server and load generator on different cores (`taskset`), so that the generator's own CPU never
counts as the server's wait.

With n usable cores and a server of w processes: the server gets cores 0..w-1 (`taskset -c` on its
command line, inherited by its worker processes), the generator (this process, and the fake
provider it starts afterwards, which inherits its affinity) the cores after them. When there are not
w + 1 cores the two cannot be separated: nothing is pinned and the plan says so, and the report
prints it next to the numbers. On Linux only (`os.sched_setaffinity`); elsewhere nothing is pinned."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def usable_cores() -> list[int]:
    if not hasattr(os, "sched_getaffinity"):
        return list(range(os.cpu_count() or 1))
    return sorted(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Plan:
    """Which cores the server and the generator get; empty tuples: not pinned (`why` says why)."""

    server: tuple[int, ...]
    generator: tuple[int, ...]
    why: str = ""

    @property
    def pinned(self) -> bool:
        return bool(self.server)

    def prefix(self) -> list[str]:
        """The server's command-line prefix (`taskset -c 0`), or nothing."""
        return ["taskset", "-c", ",".join(map(str, self.server))] if self.pinned else []

    def describe(self) -> str:
        if not self.pinned:
            return f"not pinned ({self.why})"
        return f"server on core {_cores(self.server)}, generator on core {_cores(self.generator)}"


def _cores(cores: tuple[int, ...]) -> str:
    return ",".join(map(str, cores))


def plan(server_processes: int = 1) -> Plan:
    cores = usable_cores()
    if shutil.which("taskset") is None or not hasattr(os, "sched_setaffinity"):
        return Plan((), (), "no taskset / sched_setaffinity here")
    if len(cores) < server_processes + 1:
        return Plan(
            (), (), f"{len(cores)} cores cannot hold {server_processes} server processes and the generator"
        )
    return Plan(tuple(cores[:server_processes]), tuple(cores[server_processes:][:1]))


@contextmanager
def generator_pinned(p: Plan) -> Iterator[None]:
    """This process (and what it starts meanwhile) on the plan's generator cores, restored after."""
    if not p.pinned:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(p.generator))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
