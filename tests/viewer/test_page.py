"""The HTML report of runs in every status, made through the real run service and store: what it
shows, that it is self-contained, and that no user or model text can become markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from reasonkit.protocol.loader import load_registry
from reasonkit.viewer import render_index, render_page
from tests.viewer.runs import HOSTILE, made_runs, store_trace

REGISTRY = load_registry([])
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "section", "footer", "div", "span",
    "b", "i", "h1", "h2", "h3", "h4", "p", "a", "code", "pre", "details", "summary", "table", "tr", "th",
    "td", "dl", "dt", "dd", "ul", "li", "figure", "figcaption", "svg", "defs", "marker", "path", "g",
    "rect", "line", "text", "form", "label", "select", "option", "input", "button",
}  # fmt: skip


class Tags(HTMLParser):
    """Every element and attribute a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data = tmp_path_factory.mktemp("viewer") / "data"
    return data, made_runs(data)


def page(runs: tuple[Path, dict[str, str]], status: str, **kw: Any) -> tuple[dict[str, Any], str]:
    data, ids = runs
    trace = store_trace(data, ids[status])
    return trace, render_page(trace, registry=kw.pop("registry", REGISTRY), **kw)


def assert_safe(html: str) -> Tags:
    """Only the page's own elements, no script, no event handler, nothing loaded from elsewhere."""
    tags = parse(html)
    assert set(tags.tags) <= ALLOWED_TAGS, set(tags.tags) - ALLOWED_TAGS
    assert not [name for name, _ in tags.attrs if name.startswith("on")]
    assert not [v for name, v in tags.attrs if name in ("src", "srcset", "background", "action") and v]
    assert not re.search(r"https?://|//[a-z]", html.split("<style>")[0] + html.split("</style>")[1])
    assert not re.search(r"url\((?!#)|@import", html)
    return tags


@pytest.mark.parametrize("status", ["complete", "incomplete", "failed", "cancelled", "interrupted", "budget"])
def test_every_status_renders_a_safe_self_contained_report(runs, status):
    trace, html = page(runs, status)
    tags = assert_safe(html)
    text = "".join(tags.text)
    assert html.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in html
    assert f'<span class="badge s-{trace["status"]}">{trace["status"]}</span>' in html
    for title in ("Answer", "Confidence", "Timeline", "Step graph", "Entries and steps"):
        assert f"<h2>{title}</h2>" in html
    assert html.count('class="gantt"') == 1 and html.count('class="waterfall"') == 1
    # every step of every entry is shown, with its status
    for entry in trace["entries"]:
        for step in entry["steps"]:
            assert f"<h4>{step['step_id']} " in html
            assert f'class="step s-{step["status"]}"' in html
    assert f"{float(trace['min_confidence']):.2f}" in text
    if trace.get("stop_reason"):
        assert trace["stop_reason"] in text  # parsed text: entities decoded


def test_degraded_and_skipped_steps_say_why(runs):
    trace, html = page(runs, "incomplete")
    text = "".join(parse(html).text)
    steps = {s["step_id"]: s for s in trace["entries"][0]["steps"]}
    assert steps["assess"]["status"] == "degraded" and steps["verdict"]["status"] == "skipped"
    assert "why: skipped: step 'fallacies' did not produce output" in text
    assert "invalid_output" in text  # the degraded step's breakdown is open on the page
    assert 'class="step s-degraded"' in html and 'class="step s-failed"' in html
    assert "error: fake: upstream said no " + HOSTILE in text


def test_a_skipped_entry_says_why(runs):
    trace, html = page(runs, "budget")
    skipped = [e for e in trace["entries"] if e["status"] == "skipped"]
    assert skipped and skipped[0]["skip_reason"].startswith("token budget")
    assert f"why skipped: {skipped[0]['skip_reason']}" in "".join(parse(html).text)


def test_hostile_text_from_the_user_and_the_model_is_shown_as_text(runs):
    trace, html = page(runs, "complete")
    assert HOSTILE in trace["inputs"]["query"] and HOSTILE in trace["answer"]
    tags = assert_safe(html)
    assert "script" not in tags.tags and "img" not in tags.tags
    assert "<script" not in html and "<img" not in html
    text = "".join(tags.text)
    assert f"Four-day weeks? {HOSTILE}" in text  # the question, readable as typed
    assert text.count(HOSTILE) > 20  # every model string carries it: outputs, prompts, raw replies


def test_hostile_names_in_graphs_and_timeline_stay_text(runs):
    trace, _ = page(runs, "incomplete")
    for step in trace["entries"][0]["steps"]:
        step["step_id"] = f'{step["step_id"]}"><script>x</script>'
        step["status"] = 'ok" onload="alert(1)'
    trace["entries"][0]["entry"] = "</title><script>alert(2)</script>"
    trace["run_id"] = '"><svg onload=alert(3)>'
    html = render_page(trace, registry=REGISTRY)
    tags = assert_safe(html)
    assert "script" not in tags.tags and html.count("<svg") == html.count("</svg>")


BAR = r'<rect x="([\d.]+)" y="\d+" width="([\d.]+)"[^>]*class="bar [^"]*"><title>([^<]*)'


def test_parallel_steps_overlap_on_the_timeline(runs):
    _, html = page(runs, "complete")
    bars = {
        m.group(3).split(":")[0]: (float(m.group(1)), float(m.group(1)) + float(m.group(2)))
        for m in re.finditer(BAR, html)
    }
    assess, fallacies = bars["laserlogic.assess"], bars["laserlogic.fallacies"]
    verdict = bars["laserlogic.verdict"]
    assert assess[0] < fallacies[1] and fallacies[0] < assess[1]  # ran at the same time
    assert verdict[0] >= max(assess[1], fallacies[1]) - 1  # then the step that waits for both
    trace = page(runs, "complete")[0]
    calls = [t["calls"] for e in trace["entries"] for s in e["steps"] for t in [s, *s["items"]]]
    assert len(re.findall(r'<rect [^>]*class="call">', html)) == sum(map(len, calls))  # a bar per call


def test_the_step_graph_comes_from_the_protocol_or_is_inferred(runs):
    _, html = page(runs, "incomplete")
    laserlogic = html.split('aria-label="step graph"')[1].split("</svg>")[0]
    assert laserlogic.count('class="edge"') == 5  # extract->assess, extract->fallacies, 3 into verdict
    assert "inferred from timing" not in html
    _, inferred = page(runs, "complete", registry=None)
    assert "(inferred from timing)" in inferred


def test_the_chain_graph_of_a_closed_profile_comes_from_the_profile(runs):
    # balanced ends with its closing step, which waits for every entry of the chain
    trace, html = page(runs, "complete")
    assert [e["entry"] for e in trace["entries"]][-1] == "closing"
    assert "<figcaption>entries</figcaption>" in html  # not "entries (inferred from timing)"
    assert "<title>closing: complete</title>" in html


def test_the_waterfall_adds_up_to_the_confidence_and_shows_the_threshold(runs):
    trace, html = page(runs, "complete")
    waterfall = html.split('class="waterfall"')[1].split("</svg>")[0]
    assert f">{trace['confidence']:.3f}</text>" in waterfall
    assert f"threshold {trace['min_confidence']:.2f}" in waterfall and 'class="threshold"' in waterfall
    assert waterfall.count("<rect") == len(trace["confidence_breakdown"]) + 1


def test_a_trace_from_another_version_still_renders():
    html = render_page({"run_id": "old", "entries": [{"entry": "x", "steps": [{"step_id": "s"}]}]})
    assert_safe(html)
    assert "<h4>s " in html


def test_the_list_page_links_every_run_and_keeps_the_filters(runs):
    from reasonkit.store import SqliteRunStore

    data, ids = runs
    with SqliteRunStore(data / "runs.db") as store:
        rows = store.list()
    html = render_index(rows, tool="laserlogic", status="failed", names=["laserlogic", "quick"])
    assert_safe(html.replace('action="', 'x="'))
    for run_id in ids.values():
        assert f'href="runs/{run_id}"' in html
    assert '<option value="failed" selected>' in html and '<option value="laserlogic" selected>' in html


def test_a_run_still_going_shows_its_running_step_up_to_now(runs):
    trace, _ = page(runs, "complete")
    trace["status"], trace["finished_at"], trace["duration_ms"] = "running", None, 0.0
    step = trace["entries"][-1]["steps"][-1]
    step.update(status="running", finished_at=None, duration_ms=0.0, output=None, calls=[])
    html = render_page(trace, registry=REGISTRY)
    assert_safe(html)
    bar = re.search(rf'width="([\d.]+)"[^>]*class="bar s-running bar-step"><title>{step["entry"]}\.', html)
    assert bar is not None and float(bar.group(1)) >= 1.5
