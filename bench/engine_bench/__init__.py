"""In-process engine benchmarks (section 3 of the report).

- `bench_overhead` (overhead.py): orchestration overhead per LLM call, with a provider that answers
  at once.
- `profile_overhead` (profiling.py): the same workload under a profiler, summarised by area and by
  function.
- `hotspot_microbench` (hotspots.py): direct per-call timings of the hot spots the profile points at.
- `bench_critical_path` (critical_path.py): profile (and protocol) wall time against the critical
  path, with a provider whose every call takes a fixed latency.
- `bench_memory` (memory.py): memory per concurrent run.

Every provider here is `BenchProvider` (workload.py): `reasonkit.providers.fake.FakeProvider`, no
network, no SDK, replies built from the request's JSON schema by `fill_schema` (minimal valid
objects; arrays get `minItems` items, at least one).
"""

from bench.engine_bench.critical_path import (
    CRITICAL_PATH_GOAL,
    bench_critical_path,
    critical_path,
    entry_layers,
    instance_layers,
    step_layers,
)
from bench.engine_bench.hotspots import hotspot_microbench
from bench.engine_bench.memory import bench_memory
from bench.engine_bench.overhead import OVERHEAD_GOAL_MS, bench_overhead
from bench.engine_bench.profiling import profile_overhead
from bench.engine_bench.workload import (
    CONTEXT,
    PROFILE_INPUTS,
    QUERY,
    BenchProvider,
    count_calls,
    protocol_inputs,
    run_target,
)

__all__ = [
    "CONTEXT",
    "CRITICAL_PATH_GOAL",
    "OVERHEAD_GOAL_MS",
    "PROFILE_INPUTS",
    "QUERY",
    "BenchProvider",
    "bench_critical_path",
    "bench_memory",
    "bench_overhead",
    "count_calls",
    "critical_path",
    "entry_layers",
    "hotspot_microbench",
    "instance_layers",
    "profile_overhead",
    "protocol_inputs",
    "run_target",
    "step_layers",
]
