"""Markdown building blocks shared by every section of the report."""

from __future__ import annotations

from typing import Any


def fmt(x: float | None, nd: int = 3) -> str:
    if x is None or x != x:  # None or NaN
        return "n/a"
    return f"{x:.{nd}f}"


def met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    seps = [":---" if a == "l" else "---:" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(seps) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def summary_row(
    measure: str, result: str, goal: str, ratio: str, ok: bool | None, why: str = ""
) -> list[str]:
    return [measure, result, goal, ratio, "" if ok is None else met(ok), why if ok is False else ""]


def spy_tables(profile: dict[str, Any], what: str) -> list[str]:
    out = [
        f"py-spy profile of {what} ({profile['samples']} samples of the thread holding the interpreter "
        "lock, `--gil`):",
        "",
        *table(
            ["Area (self time)", "Share"],
            [[a["name"], fmt(a["pct"], 1) + " %"] for a in profile["areas"][:12]],
            "lr",
        ),
        "",
        *table(
            ["Hottest functions (self time)", "Share"],
            [[f"`{a['name']}`", fmt(a["pct"], 1) + " %"] for a in profile["self"][:10]],
            "lr",
        ),
        "",
    ]
    if profile.get("by_reasonkit_caller"):
        out += [
            "Each sample charged to the innermost ReasonKit function on its stack (the ReasonKit code that "
            "caused the work, in its own "
            "code or in a library it called):",
            "",
            *table(
                ["ReasonKit caller", "Share"],
                [
                    [
                        f"`{a['name']}`"
                        if "(" in a["name"] and not a["name"].startswith("no ")
                        else a["name"],
                        fmt(a["pct"], 1) + " %",
                    ]
                    for a in profile["by_reasonkit_caller"][:10]
                ],
                "lr",
            ),
            "",
        ]
    return out
