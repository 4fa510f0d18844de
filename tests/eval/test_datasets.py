"""Shipped sets, user JSONL files and reasoning-gym tasks."""

from __future__ import annotations

import json
import warnings

import pytest

from reasonkit.errors import EvalError
from reasonkit.eval.datasets import SHIPPED, load_dataset, parse_jsonl


@pytest.mark.parametrize(
    ("name", "labels"), [("claims", {"true", "false"}), ("arguments", {"valid", "invalid"})]
)
def test_shipped_sets_are_labelled_and_both_classes_are_present(name, labels):
    dataset = load_dataset(name)
    assert name in SHIPPED and dataset.source == "shipped" and dataset.task
    assert len(dataset.items) >= 40
    assert {item.answer for item in dataset.items} == labels
    assert all(item.grading == "choice" and set(item.choices or []) == labels for item in dataset.items)
    assert len({item.id for item in dataset.items}) == len(dataset.items)
    for label in labels:  # neither class is a token minority
        assert sum(item.answer == label for item in dataset.items) >= len(dataset.items) // 4
    if name == "arguments":
        assert all(item.meta.get("fallacy") for item in dataset.items if item.answer == "invalid")


def test_n_and_seed_choose_the_same_items_every_time():
    a = load_dataset("claims", n=10, seed=3)
    b = load_dataset("claims", n=10, seed=3)
    c = load_dataset("claims", n=10, seed=4)
    assert [i.id for i in a.items] == [i.id for i in b.items] != [i.id for i in c.items]
    assert len(a.items) == 10


def test_user_jsonl(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [
        {"question": "2+2?", "answer": 4, "grading": "numeric"},
        {
            "id": "x",
            "question": "Capital of France?",
            "answer": "Paris",
            "context": "geo",
            "grading": "contains",
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    dataset = load_dataset(str(path))
    assert dataset.name == "mine"
    assert [(i.id, i.answer, i.grading, i.context) for i in dataset.items] == [
        ("item-0001", "4", "numeric", None),
        ("x", "Paris", "contains", "geo"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "q"}', "`answer` is required"),
        ('{"question": "q", "answer": "a", "grading": "fuzzy"}', "grading must be one of"),
        ('{"question": "q", "answer": "a", "grading": "choice"}', "needs `choices`"),
        ("not json", "line 1: not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            '{"id": "d", "question": "q", "answer": "a"}\n{"id": "d", "question": "q", "answer": "a"}',
            "used twice",
        ),
    ],
)
def test_bad_user_files_are_clear_errors(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(EvalError, match=message):
        load_dataset(str(path))


def test_unknown_dataset_names_the_choices():
    with pytest.raises(EvalError, match="arguments, claims"):
        load_dataset("no-such-set")


def test_reasoning_gym_is_seeded_and_graded_by_its_own_scorer():
    pytest.importorskip("reasoning_gym", reason="reasoning-gym: pip install 'reasonkit[eval]'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = load_dataset("rg:basic_arithmetic", n=5, seed=11)
        b = load_dataset("rg:basic_arithmetic", n=5, seed=11)
    assert [i.question for i in a.items] == [i.question for i in b.items]
    assert len(a.items) == 5 and a.source == "reasoning-gym"
    item = a.items[0]
    assert item.scorer is not None
    assert item.scorer(item.answer) == 1.0
    assert item.scorer("certainly not a number") < 1.0
    with pytest.raises(EvalError, match="reasoning-gym has no task"):
        load_dataset("rg:no_such_task_here", n=2)


def test_deeply_nested_line_names_file_and_line():
    """A line nested ~1,000 deep used to escape as a RecursionError; now one clear EvalError."""
    text = json.dumps({"id": "q1", "question": "q", "answer": "a"}) + "\n" + "[" * 1000 + "]" * 1000 + "\n"
    with pytest.raises(EvalError, match=r"mine\.jsonl: line 2: JSON nested deeper than \d+ levels"):
        parse_jsonl(text, "mine.jsonl")
