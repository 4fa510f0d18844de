"""The repetition guard (providers/repetition.py): a reply that loops trips it; distinct items,
JSON field names between varying values, and text split across pieces do not fool it."""

from __future__ import annotations

import json

from reasonkit.providers.repetition import NGRAM, REPEATS, RepetitionGuard


def feed_in_pieces(guard: RepetitionGuard, text: str, size: int = 3) -> bool:
    for start in range(0, len(text), size):
        if guard.feed(text[start : start + size]):
            return True
    return False


def test_a_looping_phrase_trips_it_within_a_few_repeats():
    phrase = "the cost of the migration depends on the team and the time it takes. "
    guard = RepetitionGuard()
    seen = ""
    for _ in range(50):
        seen += phrase
        if feed_in_pieces(guard, phrase):
            break
    assert guard.tripped
    assert seen.count(phrase) <= REPEATS + 1  # cut after about REPEATS repeats, not 50


def test_distinct_json_items_with_the_same_fields_do_not_trip_it():
    items = [
        {
            "name": f"perspective {word}",
            "lens": f"what {word} changes for the team",
            "key_question": f"is {word} worth it?",
        }
        for word in (
            "cost",
            "risk",
            "speed",
            "hiring",
            "security",
            "users",
            "legal",
            "history",
            "ops",
            "market",
        )
    ]
    guard = RepetitionGuard()
    assert not feed_in_pieces(guard, json.dumps({"perspectives": items, "confidence": 0.7}))


def test_a_json_list_repeating_one_item_trips_it():
    item = {"claim": "microservices let each team deploy on its own schedule", "support": "none"}
    guard = RepetitionGuard()
    assert feed_in_pieces(guard, json.dumps({"claims": [item] * 20}))


def test_a_word_split_across_pieces_counts_once():
    guard = RepetitionGuard(n=2, repeats=2)
    assert not guard.feed("alpha be")
    assert not guard.feed("ta gamma")  # "beta", not "be" + "ta"
    assert guard.feed(" alpha beta ")  # "alpha beta" seen twice


def test_the_window_forgets_old_text():
    guard = RepetitionGuard(n=NGRAM, repeats=2, window=20)
    phrase = " ".join(f"w{i}" for i in range(NGRAM)) + " "
    filler = " ".join(f"x{i}" for i in range(40)) + " "
    assert not guard.feed(phrase + filler + phrase)  # the first copy has left the window
