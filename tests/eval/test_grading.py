"""The documented reduction of a tool's result to a short final answer, and the graders."""

from __future__ import annotations

import pytest

from reasonkit.engine.result import EntryResult, RunResult, StepTrace
from reasonkit.eval.datasets import Item
from reasonkit.eval.grading import final_answer, first_number, grade, short_answer


def _result(protocol: str, steps: dict[str, object], answer: str = "prose") -> RunResult:
    traces = [
        StepTrace(step_id=sid, protocol=protocol, entry=protocol, kind="generate", status="ok", output=out)
        for sid, out in steps.items()
    ]
    entry = EntryResult(entry=protocol, protocol=protocol, answer=answer, steps=traces)
    return RunResult(run_id="r", kind="protocol", name=protocol, answer=answer, entries=[entry])


@pytest.mark.parametrize(
    ("grade_", "expected"), [("HIGH", "true"), ("MEDIUM", "true"), ("FLAG", "false"), ("LOW", "unverified")]
)
def test_proofguard_answer_is_its_grade(grade_, expected):
    result = _result("proofguard", {"triangulate": {"grade": grade_, "answer": "**Bottom line:** yes"}})
    assert final_answer(result) == expected


def test_laserlogic_answer_is_validity_unless_a_critical_fallacy_was_found():
    assess = {"validity": "valid"}
    assert final_answer(_result("laserlogic", {"assess": assess, "fallacies": {"fallacies": []}})) == "valid"
    minor = {"fallacies": [{"name": "appeal to emotion", "severity": "minor"}]}
    assert final_answer(_result("laserlogic", {"assess": assess, "fallacies": minor})) == "valid"
    critical = {"fallacies": [{"name": "affirming the consequent", "severity": "critical"}]}
    assert final_answer(_result("laserlogic", {"assess": assess, "fallacies": critical})) == "invalid"


def test_a_failed_structured_step_falls_back_to_the_text():
    result = _result("proofguard", {}, answer="Final answer: false")
    assert final_answer(result) == "false"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Some reasoning.\nFinal answer: 42", "42"),
        ("**Final answer:** -61.\n", "-61"),
        ("Final answer: 3\nlater text\nFinal Answer: 4", "4"),  # the last one wins
        ("## Summary\n**Answer:** Paris", "Paris"),
        ("**Bottom line:** the claim holds.\nmore", "the claim holds"),
        ("\n\n## Just a heading line\nbody", "Just a heading line"),
        ("", ""),
    ],
)
def test_short_answer(text, expected):
    assert short_answer(text) == expected


def test_graders():
    numeric = Item("a", "q", "1,234.5", grading="numeric")
    assert grade(numeric, "about 1234.5 units") == (True, 1.0)
    assert grade(numeric, "1234") == (False, 0.0)
    assert grade(numeric, "no number") == (False, 0.0)
    exact = Item("b", "q", "Yes")
    assert grade(exact, " yes. ")[0] and not grade(exact, "yes indeed")[0]
    choice = Item("c", "q", "false", grading="choice", choices=["true", "false"])
    assert grade(choice, "False")[0]
    assert grade(choice, "the claim is false")[0]
    assert not grade(choice, "true or false")[0]  # two choices named: no pick
    assert not grade(choice, "unverified")[0]
    contains = Item("d", "q", "Marie Curie", grading="contains")
    assert grade(contains, "It was marie curie, in 1903")[0]


def test_the_datasets_own_scorer_wins_and_a_crashing_scorer_is_wrong():
    item = Item("a", "q", "7", grading="exact", scorer=lambda s: 1.0 if s.strip() == "7" else 0.25)
    assert grade(item, "7") == (True, 1.0)
    assert grade(item, "8") == (False, 0.25)

    def broken(_: str) -> float:
        raise RuntimeError("boom")

    assert grade(Item("b", "q", "7", scorer=broken), "7") == (False, 0.0)


def test_first_number():
    assert first_number("x = −3.5e2 apples") == -350.0
    assert first_number(".5") == 0.5
    assert first_number("none") is None
