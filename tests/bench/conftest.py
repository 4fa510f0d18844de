"""Results of the issue-26 sections (6-9) on a tiny setting, shared by the smoke tests: each starts
real servers or the real model, so each is measured once per session."""

from __future__ import annotations

import sys
from typing import Any

import pytest


@pytest.fixture(scope="session")
def rk_path() -> str:
    from bench.startup_bench import find_rk

    found = find_rk(sys.executable)
    assert found, "no rk console script next to this interpreter"
    return found


@pytest.fixture(scope="session")
def floors_result(rk_path) -> dict[str, Any]:
    from bench.floors_bench import bench_floors

    # enough calls per arm for several of /proc's 10 ms CPU ticks: with 3, a fast arm read 0 ms and
    # its ratios could not be formed
    return bench_floors(rk_path, calls=40, rounds=1)


@pytest.fixture(scope="session")
def admission_result(rk_path) -> dict[str, Any]:
    from bench.admission_bench import run

    return run(rk_path, cap=2, in_flight=6, rounds=1)


@pytest.fixture(scope="session")
def store_result() -> dict[str, Any]:
    from bench.store_bench import bench_store

    return bench_store(runs=4, steps=2)


@pytest.fixture(scope="session")
def decode_result() -> dict[str, Any]:
    from bench.decode_bench import bench_decode

    return bench_decode(tokens=4, rounds=1)
