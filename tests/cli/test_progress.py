"""`rk think` progress on stderr: one line per step and per entry when it is not a terminal; on a
terminal, the reply being written under the bar."""

from __future__ import annotations

import io
import re

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


class Terminal(io.StringIO):
    """What rich writes to a terminal, kept."""

    def isatty(self) -> bool:
        return True


def visible(screen: Terminal) -> str:
    """The text rich drew, without its escape codes and with no whitespace (it wraps lines)."""
    return "".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue()).split())


def text(entry: str, step: str, message: str, item: int | None = None) -> Event:
    return Event("text", "r", entry=entry, step=step, item=item, message=message)


def test_on_a_terminal_the_reply_being_written_is_shown():
    screen = Terminal()
    with ProgressDisplay("quick", quiet=False, stream=screen) as display:
        assert display.streaming
        display.on_event(Event("step_started", "r", entry="laserlogic", step="verdict"))
        for piece in ('{"verdict": "The argument ', "is valid but ", 'unsound", "confidence": 0.6}'):
            display.on_text(text("laserlogic", "verdict", piece))
    shown = visible(screen)
    assert "laserlogic.verdictwriting:" in shown
    assert '{"verdict":"Theargumentisvalidbutunsound","confidence":0.6}' in shown


def test_the_display_follows_one_step_until_it_finishes():
    screen = Terminal()
    with ProgressDisplay("quick", quiet=False, stream=screen) as display:
        display.on_text(text("gigathink", "explore", "FIRST ITEM", item=1))
        display.on_text(text("gigathink", "explore", "SECOND ITEM", item=2))  # another item: not shown
        display.on_event(Event("step_finished", "r", entry="gigathink", step="explore", item=1, status="ok"))
        display.on_text(text("gigathink", "synthesize", "FINAL STEP"))
    shown = visible(screen)
    assert "FIRSTITEM" in shown and "SECONDITEM" not in shown and "FINALSTEP" in shown


def test_without_a_terminal_nothing_is_streamed(capsys):
    with ProgressDisplay("quick", quiet=False) as display:
        assert not display.streaming
        display.on_event(Event("step_started", "r", entry="gigathink", step="dimensions"))
        display.on_text(text("gigathink", "dimensions", "SHOULD NOT SHOW"))
    err = capsys.readouterr().err
    assert "SHOULD NOT SHOW" not in err and "start  gigathink.dimensions" in err
