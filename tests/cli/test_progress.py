"""`rk think` progress on stderr when it is not a terminal: one line per step and per entry."""

from __future__ import annotations

from reasonkit.cli.progress import ProgressDisplay
from reasonkit.engine import Event


def test_plain_progress_has_one_line_per_step_and_entry(capsys):
    events = [
        Event("run_started", "r", total=2),
        Event("step_started", "r", entry="gigathink", step="dimensions"),
        Event(
            "step_finished", "r", entry="gigathink", step="dimensions", status="ok", confidence=0.7, done=1
        ),
        Event("step_started", "r", entry="gigathink", step="explore"),
        *(
            Event("step_finished", "r", entry="gigathink", step="explore", item=i, status="ok", done=1)
            for i in range(1, 13)
        ),
        Event("step_finished", "r", entry="gigathink", step="explore", status="ok", confidence=0.6, done=2),
        Event("entry_finished", "r", entry="gigathink", status="complete", confidence=0.65),
    ]
    with ProgressDisplay("gigathink", quiet=False) as display:
        for event in events:
            display.on_event(event)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 5, lines  # 2 starts, 2 finished steps, 1 entry
    assert not any("explore[" in line for line in lines)
    assert "gigathink complete confidence 0.65" in lines[-1]


def test_quiet_prints_nothing(capsys):
    with ProgressDisplay("x", quiet=True) as display:
        display.on_event(Event("step_started", "r", entry="e", step="s"))
    assert capsys.readouterr().err == ""
