"""The goals of issue 26 (the server's own cost against the floors of its stack), each as a ratio
measured in this run against its target: met, missed, or not measured in this run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.report.markdown import fmt, table

# goal, target text, the measured ratio from the results (None: not measured), met(ratio)
Row = tuple[str, str, Callable[[dict[str, Any]], float | None], Callable[[float], bool] | None]


def _get(res: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(res, dict) or key not in res:
            return None
        res = res[key]
    return res


def _reject_ratio(res: dict[str, Any]) -> float | None:
    p99 = _get(res, "admission", "burst", "routed", "reject_p99_ms")
    return None if p99 is None else p99 / 50.0


ROWS: tuple[Row, ...] = (
    (
        "1. cached call: server CPU / minimal SDK server's (quiet logging), one in flight",
        "<= 1.3",
        lambda r: _get(r, "floors", "ratios", "cached_vs_sdk_quiet"),
        lambda x: x <= 1.3,
    ),
    (
        "2. uncached: our server CPU per LLM call / the OpenAI SDK's own CPU per call",
        "<= 2",
        lambda r: _get(r, "floors", "ratios", "ours_per_llm_call_vs_sdk"),
        lambda x: x <= 2.0,
    ),
    (
        "3. refusal p99 under a burst of 3x capacity / 50 ms (routed calls; admitted calls within "
        "their deadline)",
        "<= 1",
        _reject_ratio,
        None,  # also needs the admitted calls' deadlines: see _met
    ),
    (
        "4. throughput, `workers = 2` / `workers = 1`, generator on other cores",
        ">= 1.8",
        lambda r: _get(r, "admission", "throughput_ratio"),
        lambda x: x >= 1.8,
    ),
    (
        "5. OpenAI SDK CPU per chat completion / a raw POST of the same body (the decision is in section 9)",
        "(a decision)",
        lambda r: _get(r, "floors", "ratios", "sdk_vs_raw_post"),
        None,
    ),
    (
        "6. local provider tokens/s / raw llama.cpp on the main thread",
        ">= 0.9",
        lambda r: _get(r, "decode", "ratios", "provider_vs_raw_main"),
        lambda x: x >= 0.9,
    ),
    (
        "6. raw llama.cpp on a second thread (after the main thread decoded) / on the main thread",
        ">= 0.9",
        lambda r: _get(r, "decode", "ratios", "raw_two_vs_raw_main"),
        lambda x: x >= 0.9,
    ),
)


def goal_rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal: its text, target, the measured ratio and met (True / False / None: not judged)."""
    out = []
    for goal, target, measure, ok in ROWS:
        value = measure(res)
        met: bool | None = None
        if value is not None and ok is not None:
            met = ok(value)
        elif value is not None and goal.startswith("3."):
            routed = _get(res, "admission", "burst", "routed") or {}
            met = value <= 1.0 and bool(routed.get("admitted_within_deadline"))
        out.append({"goal": goal, "target": target, "measured": value, "met": met})
    generated = list(res.get("sections", []))
    out.append(
        {
            "goal": "7. sections of docs/benchmarks.md this run generated",
            "target": "all",
            "measured": f"{len(generated)} of {res.get('all_sections', len(generated))}",
            "met": len(generated) == res.get("all_sections", len(generated)),
        }
    )
    return out


def goals_section(res: dict[str, Any]) -> list[str]:
    rows = []
    for g in goal_rows(res):
        value = g["measured"]
        shown = value if isinstance(value, str) else ("not measured" if value is None else fmt(value, 2))
        verdict = {True: "**met**", False: "**missed**", None: ""}[g["met"]]
        rows.append([g["goal"], g["target"], shown, verdict])
    return [
        "## Issue 26 goals: the server's own cost against its floors",
        "",
        "Each goal as a ratio measured in this run, the arms side by side (sections 6, 8 and 9 say how; "
        "goals 1, 2, 5 and 6 belong to the call path and the embedded model, goals 3, 4 and 7 to admission, "
        "workers and this report). A ratio is the median of per-round ratios, so a load spike that "
        "slows a whole round cancels out; the absolute numbers beside them in the sections do not.",
        "",
        *table(["Goal", "Target", "Measured", "Status"], rows, "llrl"),
        "",
    ]
