"""`rk think` on a terminal shows the final step's reply as it is written (stderr on a
pseudo-terminal), while stdout stays the result alone: `--format json` is one JSON object."""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import select
import subprocess
import sys

from reasonkit.providers.schema_fill import fill_schema
from tests.fakes.fake_llm import Reply, _requested_schema


def tagged_replies():
    """Every reply's strings end in `~reply<n>`, so the last reply is known by its tag."""
    numbers = itertools.count(1)

    def handler(req):
        return Reply(json=fill_schema(_requested_schema(req) or {}, tag=f"~reply{next(numbers)}"))

    return handler


def run_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """rk with stderr on a pseudo-terminal and stdout on a pipe: (exit code, stdout, terminal)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reasonkit.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    screen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                chunk = b""
            if not chunk and proc.poll() is not None:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode(), screen.decode(errors="replace")


def test_the_final_steps_reply_streams_to_the_terminal_and_stdout_stays_one_object(fake_llm, tmp_path):
    fake_llm.default = tagged_replies()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TERM": "xterm",
        "COLUMNS": "120",
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "REASONKIT_DATA_DIR": str(tmp_path / "data"),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }
    code, out, screen = run_on_a_terminal(
        [
            "think",
            "--protocol",
            "laserlogic",
            "--format",
            "json",
            "All swans are white, so this bird is white.",
        ],
        env,
    )
    assert code == 0, screen[-2000:]
    result = json.loads(out)  # one object, nothing streamed into it
    assert result["status"] == "complete"
    last = len(fake_llm.requests)
    shown = "".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen).split())
    assert "laserlogic.verdictwriting:" in shown
    assert f"~reply{last}" in shown  # the final step's reply, as it was written
