"""Owners of stored runs and their liveness, against real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from reasonkit.store.liveness import Owner, current_owner, owner_gone, proc_stat, process_alive

HAS_PROC = os.path.exists(f"/proc/{os.getpid()}/stat")
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="needs /proc")


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_current_owner_is_this_process() -> None:
    me = current_owner()
    assert me.host == socket.gethostname() and me.pid == os.getpid()
    assert current_owner() is me  # computed once per process
    if HAS_PROC:
        assert me.start and me.start == (proc_stat(os.getpid()) or ("", ""))[1]


@needs_proc
def test_proc_stat_of_a_command_name_with_spaces_and_parens() -> None:
    # the command name is field 2 of /proc/PID/stat; the fields after it are found from the last ")"
    code = (
        "import sys, time\n"
        "open('/proc/self/comm', 'w').write('x) 1 2 (y')\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with open(f"/proc/{proc.pid}/comm") as fh:
            assert fh.read().strip() == "x) 1 2 (y"
        stat = proc_stat(proc.pid)
        assert stat is not None and stat[0] in "RSD" and stat[1].isdigit()
        assert stat == proc_stat(proc.pid)  # the start time is stable
    finally:
        proc.kill()
        proc.communicate()
    assert proc_stat(2**22 + 12345) is None


def test_process_alive_live_dead_and_zombie() -> None:
    proc = _sleeper()
    try:
        start = (proc_stat(proc.pid) or ("", ""))[1]
        assert process_alive(proc.pid, start)
        assert process_alive(proc.pid, "")  # unknown start time: the pid alone decides
        if HAS_PROC:
            assert not process_alive(proc.pid, "1")  # same pid, another start time: a reused pid
        proc.kill()
        if HAS_PROC:  # killed but not reaped yet: a zombie counts as gone
            for _ in range(200):
                if (proc_stat(proc.pid) or ("Z",))[0] == "Z":
                    break
                time.sleep(0.01)
            assert not process_alive(proc.pid, start)
    finally:
        proc.kill()
        proc.wait()
    assert not process_alive(proc.pid, start)  # reaped
    assert not process_alive(0, "") and not process_alive(-1, "")


def test_owner_gone() -> None:
    me = current_owner()
    now = time.time()
    stale = 3600.0
    assert not owner_gone(me, now, now, stale)  # this process: alive
    assert not owner_gone(Owner(me.host, me.pid, ""), now, now, stale)
    if me.start:  # our pid with another start time: an earlier process had our pid (a restart)
        assert owner_gone(Owner(me.host, me.pid, "1"), now, now, stale)
    assert owner_gone(Owner(me.host, 2**22 + 12345, ""), now, now, stale)  # no such process
    # another host: judged by the row's age only
    assert not owner_gone(Owner("elsewhere", 1, "5"), now - stale + 60, now, stale)
    assert owner_gone(Owner("elsewhere", 1, "5"), now - stale - 60, now, stale)
    proc = _sleeper()
    try:
        start = (proc_stat(proc.pid) or ("", ""))[1]
        assert not owner_gone(Owner(me.host, proc.pid, start), now, now, stale)
    finally:
        proc.kill()
        proc.wait()
    assert owner_gone(Owner(me.host, proc.pid, start), now, now, stale)
