"""Store fixtures: a real PostgreSQL server for the session (started by the tests themselves, see
postgres_server.py) and stores on both back ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.programs import skip_or_fail

from .postgres_server import MISSING, PostgresServer, find_postgres_bin, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if find_postgres_bin() is None:
        skip_or_fail(MISSING)
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A database URL of its own (a fresh schema) for one test."""
    schema = postgres_server.new_schema()
    yield postgres_server.schema_url(schema)
    postgres_server.drop_schema(schema)


@pytest.fixture
def pg_store(pg_url: str):
    from reasonkit.store.postgres import PostgresRunStore

    s = PostgresRunStore(pg_url, lease_secs=30)
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path):
    """The same tests on both back ends."""
    if request.param == "sqlite":
        from reasonkit.store import SqliteRunStore

        s = SqliteRunStore(tmp_path / "data" / "runs.db")
        yield s
        s.close()
    else:
        yield request.getfixturevalue("pg_store")
