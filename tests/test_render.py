"""Renderings of a result: one wording for unknown prices everywhere, a heading on the answer."""

from __future__ import annotations

from reasonkit.cli.run_commands import render_tree
from reasonkit.engine.result import RunResult
from reasonkit.presentation.fmt import UNKNOWN_PRICE
from reasonkit.render import render_markdown, render_text


def result(price_known: bool) -> RunResult:
    return RunResult(
        run_id="r1",
        kind="protocol",
        name="laserlogic",
        status="complete",
        complete=True,
        answer="Valid but unsound.",
        cost_usd=0.0123,
        price_known=price_known,
    )


def test_unknown_prices_read_the_same_in_every_rendering():
    unknown = result(price_known=False)
    for text in (render_text(unknown), render_markdown(unknown), render_tree(unknown.trace())):
        assert f"$0.0123 ({UNKNOWN_PRICE})" in text
    known = result(price_known=True)
    for text in (render_text(known), render_markdown(known), render_tree(known.trace())):
        assert "$0.0123" in text and UNKNOWN_PRICE not in text


def test_the_text_answer_has_a_heading():
    lines = render_text(result(price_known=True)).splitlines()
    assert lines[:2] == ["Answer:", "Valid but unsound."]


def test_a_calibrated_confidence_shows_its_raw_value_in_text_and_markdown():
    from reasonkit.engine.result import RunResult
    from reasonkit.render import render_markdown, render_text

    result = RunResult(run_id="r1", kind="protocol", name="proofguard", status="complete", complete=True)
    result.confidence, result.confidence_raw = 0.588, 0.744
    assert "Confidence: 0.59, calibrated from 0.74 (" in render_text(result)
    assert "**Confidence 0.59**, calibrated from 0.74 (" in render_markdown(result)
    result.confidence_raw = None
    assert "calibrated" not in render_text(result) + render_markdown(result)


def test_a_zero_delta_reads_plus_zero_in_every_rendering():
    """A `not_finished` factor of -0.0 (nothing finished had any confidence) once printed
    `+-0.000`."""
    from reasonkit.engine.result import Factor
    from reasonkit.viewer.page import render_page

    r = result(price_known=True)
    r.confidence_breakdown = [
        Factor(signal="weighted_mean", delta=0.0, detail="steps: a 0.00x1"),
        Factor(signal="not_finished", delta=-0.0, detail="steps that did not finish"),
    ]
    for text in (render_text(r), render_markdown(r), render_tree(r.trace()), render_page(r.trace())):
        assert "+-0.000" not in text and "-0.000" not in text
    assert "not_finished: +0.000" in render_text(r)
