"""`rk db migrate` and `rk runs` against a real PostgreSQL (started by tests/store's fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from reasonkit.store.postgres import PostgresRunStore
from reasonkit.store.postgres_schema import SCHEMA_VERSION
from tests.store._helpers import make_result
from tests.store.conftest import pg_url, postgres_server  # noqa: F401 - the fixtures

ROOT = Path(__file__).resolve().parents[2]
_RK = Path(sys.executable).parent / "rk"
RK = [str(_RK)] if _RK.exists() else [sys.executable, "-m", "reasonkit.cli"]


def rk(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("REASONKIT_")}
    e.update(env)
    return subprocess.run([*RK, *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=e)


def test_migrate_check_then_migrate_then_nothing_to_do(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    env = {"REASONKIT_DATABASE_URL": pg_url, "REASONKIT_DATA_DIR": str(tmp_path)}
    check = rk("db", "migrate", "--check", **env)
    assert check.returncode == 1 and f"schema 0, migrations to {SCHEMA_VERSION} pending" in check.stderr
    first = rk("db", "migrate", **env)
    assert first.returncode == 0, first.stderr
    assert f"migrated schema 0 -> {SCHEMA_VERSION}" in first.stdout
    again = rk("db", "migrate", **env)
    assert again.returncode == 0 and "nothing to migrate" in again.stdout
    assert rk("db", "migrate", "--check", **env).returncode == 0
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM reasonkit_schema").fetchone() == (SCHEMA_VERSION,)


def test_runs_commands_read_the_shared_database(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    with PostgresRunStore(pg_url) as store:
        store.save(make_result("pgrun0000000001", n_steps=2, entries=1))
    env = {"REASONKIT_DATABASE_URL": pg_url, "REASONKIT_DATA_DIR": str(tmp_path)}
    listed = rk("runs", "list", **env)
    assert listed.returncode == 0, listed.stderr
    assert "pgrun000" in listed.stdout
    shown = rk("runs", "show", "pgrun0000", **env)
    assert shown.returncode == 0 and "paranoid" in shown.stdout
    assert not (tmp_path / "runs.db").exists()  # nothing went to SQLite


def test_unreachable_database_is_one_clear_line_without_the_password(tmp_path: Path) -> None:
    url = "postgresql://rk:Hidden-Pw-42@127.0.0.1:1/db"
    out = rk("db", "migrate", REASONKIT_DATABASE_URL=url, REASONKIT_DATA_DIR=str(tmp_path))
    assert out.returncode == 1
    assert out.stderr.startswith("rk: error: the run database postgresql://rk:***@127.0.0.1:1/db cannot be")
    assert "Hidden-Pw-42" not in out.stderr and "Traceback" not in out.stderr
    listed = rk("runs", "list", REASONKIT_DATABASE_URL=url, REASONKIT_DATA_DIR=str(tmp_path))
    assert listed.returncode == 1 and "Hidden-Pw-42" not in listed.stderr
