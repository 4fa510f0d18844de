"""`rk runs` end to end, in subprocesses, against a database the test fills."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reasonkit.store import SqliteRunStore
from tests.store._helpers import make_result

ROOT = Path(__file__).resolve().parents[2]
_RK = Path(sys.executable).parent / "rk"
RK = [str(_RK)] if _RK.exists() else [sys.executable, "-m", "reasonkit.cli"]


def rk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k not in ("REASONKIT_DATA_DIR", "REASONKIT_CONFIG")}
    e.update(env or {})
    return subprocess.run([*RK, *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=e)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    now = time.time()
    with SqliteRunStore(d / "runs.db") as s:
        s.save(
            make_result(
                "aaaa111100000001",
                kind="protocol",
                name="gigathink",
                status="complete",
                started_at=now - 300,
                n_steps=10,
                entries=1,
            )
        )
        bad = make_result(
            "aaaa222200000002",
            kind="profile",
            name="balanced",
            status="incomplete",
            started_at=now - 200,
            n_steps=12,
            entries=2,
        )
        bad.stop_reason = "time budget of 30s reached"
        bad.entries[1].steps[-1].status = "failed"
        bad.entries[1].steps[-1].error = "anthropic: 503 overloaded after 3 attempts"
        s.save(bad)
        s.save(
            make_result(
                "bbbb333300000003",
                kind="protocol",
                name="laserlogic",
                status="failed",
                started_at=now - 100,
                n_steps=3,
                entries=1,
            )
        )
    return d


def test_list_json_and_text(data_dir: Path) -> None:
    r = rk("runs", "--data-dir", str(data_dir), "list", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["run_id"] for x in rows] == ["bbbb333300000003", "aaaa222200000002", "aaaa111100000001"]
    assert (
        rows[1]["status"] == "incomplete" and rows[1]["kind"] == "profile" and rows[1]["name"] == "balanced"
    )
    assert isinstance(rows[0]["started_at"], float) and rows[0]["started"]
    # --data-dir after the subcommand too; filters; text table
    r = rk("runs", "list", "--data-dir", str(data_dir), "--status", "failed", "--format", "json")
    assert [x["run_id"] for x in json.loads(r.stdout)] == ["bbbb333300000003"]
    r = rk("runs", "list", "--data-dir", str(data_dir), "--limit", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["RUN", "ID"] and len(lines) == 3
    assert "bbbb333300000003" in lines[1] and "laserlogic" in lines[1] and "failed" in lines[1]
    assert "balanced (profile)" in lines[2] and "incomplete" in lines[2] and "0.83" in lines[2]


def test_list_uses_settings_data_dir(data_dir: Path, tmp_path: Path) -> None:
    r = rk("runs", "list", "--format", "json", env={"REASONKIT_DATA_DIR": str(data_dir)})
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 3
    cfg = tmp_path / "rk.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{data_dir.as_posix()}"\n')
    r = rk("--config", str(cfg), "runs", "list", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 3


def test_list_without_database_does_not_create_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    r = rk("runs", "--data-dir", str(empty), "list", "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = rk("runs", "--data-dir", str(empty), "list")
    assert r.returncode == 0 and "no runs recorded yet" in r.stderr
    assert not empty.exists()


def test_show_tree(data_dir: Path) -> None:
    r = rk("runs", "--data-dir", str(data_dir), "show", "aaaa2")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("run aaaa222200000002  profile balanced")
    # the head is `rk runs show --full`'s (reasonkit/presentation/fmt.header_rows)
    assert "status      incomplete (time budget of 30s reached)" in out
    assert "(meets the threshold 0.80)" in out and "meets threshold: yes" in out  # the run, an entry
    assert "tokens" in out and "cost $" in out and "duration    12.5 s" in out
    lines = out.splitlines()
    i = lines.index("entries")
    entry = lines[i + 1]
    assert entry.startswith("  gigathink  complete  conf 0.80")
    step = lines[i + 2]
    assert step.startswith("    explore  ok  conf 0.80")
    assert lines[i + 3].startswith("        item 1  ok  conf 0.80  1.2 s")
    assert "        error: anthropic: 503 overloaded after 3 attempts" in out
    assert "confidence breakdown" in out and "contradiction: -0.030 (one entry disagreed)" in out


def test_export_stdout_and_file(data_dir: Path, tmp_path: Path) -> None:
    with SqliteRunStore(data_dir / "runs.db") as s:
        expected = s.get("aaaa111100000001")
    r = rk("runs", "--data-dir", str(data_dir), "export", "aaaa1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == expected
    out = tmp_path / "out" / "trace.json"
    r = rk("runs", "--data-dir", str(data_dir), "export", "aaaa111100000001", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == expected
    assert [p.name for p in out.parent.iterdir()] == ["trace.json"]  # no temp file left behind
    assert "written to" in r.stderr


def test_unknown_and_ambiguous_ids_exit_1(data_dir: Path) -> None:
    for cmd in ("show", "export"):
        r = rk("runs", "--data-dir", str(data_dir), cmd, "ffff")
        assert r.returncode == 1
        assert "rk: error: no run 'ffff'" in r.stderr and r.stdout == ""
        r = rk("runs", "--data-dir", str(data_dir), cmd, "aaaa")
        assert r.returncode == 1
        assert "ambiguous" in r.stderr and "aaaa111100000001" in r.stderr and "aaaa222200000002" in r.stderr
    r = rk("runs", "--data-dir", str(data_dir / "nothing-here"), "show", "aaaa")
    assert r.returncode == 1 and "no runs recorded yet" in r.stderr


def test_prune(data_dir: Path) -> None:
    r = rk("runs", "--data-dir", str(data_dir), "prune")
    assert r.returncode == 2 and "--older-than-days" in r.stderr
    r = rk("runs", "--data-dir", str(data_dir), "prune", "--older-than-days", "30")
    assert r.returncode == 0 and r.stdout.startswith("deleted 0 runs; 3 left")
    r = rk("runs", "--data-dir", str(data_dir), "prune", "--keep", "1")
    assert r.returncode == 0 and r.stdout.startswith("deleted 2 runs; 1 left")
    r = rk("runs", "--data-dir", str(data_dir), "list", "--format", "json")
    assert [x["run_id"] for x in json.loads(r.stdout)] == ["bbbb333300000003"]


def test_list_marks_runs_of_dead_processes_interrupted(data_dir: Path) -> None:
    with SqliteRunStore(data_dir / "runs.db") as s:
        s.start(make_result("cccc444400000004", status="running", n_steps=2, entries=1))
    import sqlite3

    raw = sqlite3.connect(data_dir / "runs.db")
    raw.execute("UPDATE runs SET owner_pid = ? WHERE run_id = 'cccc444400000004'", (2**22 + 4321,))
    raw.commit()
    raw.close()
    r = rk("runs", "--data-dir", str(data_dir), "list", "--status", "interrupted", "--format", "json")
    assert [x["run_id"] for x in json.loads(r.stdout)] == ["cccc444400000004"]
    r = rk("runs", "--data-dir", str(data_dir), "show", "cccc")
    assert "status      interrupted" in r.stdout


def test_version_does_not_import_the_store() -> None:
    code = (
        "import sys; import reasonkit.cli; print('reasonkit.store' in sys.modules, 'sqlite3' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stderr


def test_the_status_choices_are_the_run_statuses():
    """`rk runs list --status` spells the statuses out (so `rk --help` imports no engine); they must
    be exactly the engine's one RunStatus."""
    from reasonkit.cli.run_commands import STATUS_CHOICES
    from reasonkit.engine.result import RUN_STATUSES

    assert STATUS_CHOICES == RUN_STATUSES
