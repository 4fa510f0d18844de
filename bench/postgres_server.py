"""A real PostgreSQL server for tests and the store bench: `initdb` in a temporary folder, started on a
free 127.0.0.1 port with its socket in that folder, stopped (and the folder removed) at the end.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user (Debian's
package creates it), or `nobody`. `find_postgres_bin()` looks for `initdb` on PATH and in
/usr/lib/postgresql/*/bin (Debian does not put it on PATH).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MISSING = (
    "NOT TESTED: PostgreSQL (initdb, pg_ctl, postgres) is not installed "
    "(install: apt-get install -y postgresql; `bash .ci/run` installs it)"
)


def find_postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [
        Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    ]
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> tuple[list[str], int | None, int | None]:
    """(command prefix, uid, gid) to run the server as a non-root user when we are root."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], user.pw_uid, user.pw_gid
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


class PostgresServer:
    def __init__(self, bindir: Path, root: Path, port: int):
        self.bindir, self.root, self.port = bindir, root, port
        self.user = "reasonkit"
        self.prefix: list[str] = []  # the command prefix that runs the server as its own user
        self.options = ""  # the server's command-line options (port, socket folder, ...)

    def stop(self) -> None:
        """Stop the server at once (an outage); `start()` brings it back on the same port and data."""
        subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate"]
            + ["-w", "stop"],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-o", self.options]
            + ["-l", str(self.root / "log"), "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
            timeout=90,
        )
        _wait_ready(self)

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def schema_url(self, schema: str) -> str:
        """A URL whose tables live in their own schema (one per test: isolated, cheap to make)."""
        return f"{self.url}?options=-csearch_path%3D{schema}"

    def new_schema(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return name

    def drop_schema(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@contextmanager
def running_postgres(durable: bool = False) -> Iterator[PostgresServer]:
    """Start a throwaway server. `durable=False` turns fsync off (tests); the bench keeps it on."""
    bindir = find_postgres_bin()
    if bindir is None:
        raise FileNotFoundError(MISSING)
    prefix, uid, gid = _run_as()
    root = Path(tempfile.mkdtemp(prefix="rk-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if uid is not None and gid is not None:
        for path in (root, sock):
            os.chown(path, uid, gid)
    server = PostgresServer(bindir, root, free_port())
    options = f"-p {server.port} -k {sock} -h 127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    server.prefix, server.options = prefix, options
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", server.user, "-A", "trust", "-E", "UTF8"]
            + ["--no-locale"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w"]
            + ["-t", "60", "start"],
            check=True,
            capture_output=True,
            timeout=90,
        )
        _wait_ready(server)
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PostgresServer) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(server.url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
