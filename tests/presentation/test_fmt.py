"""The one wording of numbers, costs and breakdown deltas (reasonkit/presentation/fmt.py)."""

from __future__ import annotations

from reasonkit.presentation import TokensView, fmt


def test_confidences_times_and_costs():
    assert (fmt.conf(None), fmt.conf(0.704)) == ("-", "0.70")
    assert (fmt.calibrated(None), fmt.calibrated(0.744)) == ("", ", calibrated from 0.74")
    assert (fmt.secs(None), fmt.secs(999), fmt.secs(1500)) == ("-", "999 ms", "1.5 s")
    assert fmt.local_time(None) == "-" and fmt.iso_time(None) is None
    assert fmt.cost_text(0.0123, True) == fmt.usd(0.0123) == "$0.0123"
    assert fmt.cost_text(0.0123, False) == f"$0.0123 ({fmt.UNKNOWN_PRICE})"


def test_tokens_show_cache_counts_only_when_there_are_some():
    assert fmt.tokens_text(TokensView(10, 5)) == "15 tokens (10 in, 5 out)"
    assert fmt.tokens_text(TokensView(10, 5, 3, 2)) == "20 tokens (10 in, 5 out, 3 cache read, 2 cache write)"


def test_the_base_of_a_breakdown_is_unsigned_and_adjustments_are_signed():
    assert fmt.signed(0.8, "weighted_mean") == fmt.signed(0.8, "model") == "0.800"
    assert (fmt.signed(0.05, "agreement"), fmt.signed(-0.05, "contradiction")) == ("+0.050", "-0.050")


def test_names_for_listings():
    assert (fmt.target("profile", "quick"), fmt.target("protocol", "bedrock")) == (
        "quick (profile)",
        "bedrock",
    )
    assert (fmt.entry_title("a", "a"), fmt.entry_title("pg2", "proofguard")) == ("a", "pg2 (proofguard)")
    assert fmt.label("key_insights") == "key insights"


def test_a_calls_notes_read_the_same_on_the_page_and_in_the_terminal():
    """The page wrote `cached (memory)` and each fallback, the terminal `cached in memory` and a count."""
    from reasonkit.presentation import CallView

    call = CallView(
        purpose="main", cached=True, cache_layer="memory", attempts=3,
        fallbacks=[{"provider": "anthropic", "reason": "breaker open"}], error="late",
    )  # fmt: skip
    assert fmt.call_notes(call) == [
        "cached in memory", "3 attempts", "fallback from anthropic: breaker open", "error: late",
    ]  # fmt: skip
    assert fmt.call_notes(CallView(purpose="main", cached=True)) == ["cached"]
    assert fmt.call_notes(CallView(purpose="main", attempts=1)) == []
