"""Section 5: start-up of `rk --version` and `rk serve-mcp`."""

from __future__ import annotations

from typing import Any

from bench.report.markdown import fmt, met, table
from bench.report.why import stdio_start_ms, why_mcp_start


def startup_section(startup: dict[str, Any], imports: dict[str, Any] | None) -> list[str]:
    out = ["### 5a. `rk --version`", ""]
    if "error" in startup:
        return out + [f"Not measured: {startup['error']}.", ""]
    out += [
        "**What it measures.** Wall time of `rk --version` (the installed console script) against "
        "`python -c pass` with the same interpreter, each started as a subprocess. "
        f"{startup['warmup']} warm-up runs each, then {startup['rounds']} rounds of one run each, rotating "
        "which "
        "goes first; bytecode caching on (`PYTHONDONTWRITEBYTECODE` unset for the children). The third "
        "command is the floor for `rk --version`: the interpreter plus the `reasonkit` package, printing the "
        "version without importing the CLI module.",
        "",
        *table(
            ["Command", "Median ms", "/ python -c pass"],
            [
                [
                    f"`rk --version` (prints `{startup['version_output']}`)",
                    fmt(startup["rk_p50_ms"], 1),
                    fmt(startup["ratio_of_medians"], 2),
                ],
                ["`python -c pass`", fmt(startup["python_p50_ms"], 1), "1.00"],
                [
                    f"`{startup['floor_command']}` (floor)",
                    fmt(startup["floor_p50_ms"], 1),
                    fmt(startup["floor_ratio_of_medians"], 2),
                ],
            ],
        ),
        "",
        *table(
            ["Ratio rk / python", "Value", "Goal", "Result / goal"],
            [
                [
                    "ratio of the medians",
                    f"**{fmt(startup['ratio_of_medians'], 2)}**",
                    f"<= {startup['goal_ratio']:g}",
                    fmt(startup["ratio_of_medians"] / startup["goal_ratio"], 2),
                ],
                ["median of the per-round ratios", fmt(startup["ratio_p50"], 2), "", ""],
                [
                    "per-round ratio, 10th–90th percentile",
                    f"{fmt(startup['ratio_p10'], 2)}–{fmt(startup['ratio_p90'], 2)}",
                    "",
                    "",
                ],
            ],
        ),
        "",
        f"Goal: ratio <= {startup['goal_ratio']:g}: {met(startup['met'])}.",
        "",
        "Per-round ratios: " + ", ".join(fmt(x, 2) for x in startup["round_ratios"]) + ".",
        "",
    ]
    if imports and "error" not in imports:
        out += [
            f'`python -X importtime -c "import {imports["module"]}"` '
            f"(median of {imports['runs']} runs): the import takes "
            f"{fmt(imports['total_ms'], 1)} ms cumulative and loads {imports['modules_loaded']} modules that "
            "a bare "
            "interpreter does not. Top 5 by cumulative time (a module's cumulative time includes what it "
            "imports, so nested rows overlap):",
            "",
            *table(
                ["Module", "Cumulative ms", "Self ms", "Imported by"],
                [
                    [
                        f"`{t['module']}`",
                        fmt(t["cumulative_ms"], 1),
                        fmt(t["self_ms"], 1),
                        f"`{t['imported_by']}`" if t["imported_by"] else "",
                    ]
                    for t in imports["top"]
                ],
                "lrrl",
            ),
            "",
        ]
        if not startup["met"] and any(t["module"] == "click" for t in imports["top"]):
            out += [
                "Why the goal is missed, and the proposed fix: the console script imports `reasonkit.cli`, "
                "which imports click (and the other modules above) at module level before click can "
                "answer `--version`. A small entry point that prints `reasonkit.__version__` for "
                "`-V`/`--version` and otherwise imports `reasonkit.cli` would bring `rk --version` to the "
                "floor row above; `rk --help` and the commands would be unchanged.",
                "",
            ]
    elif imports:
        out += [f"Import times not measured: {imports['error']}.", ""]
    return out


def serve_startup_section(
    serve_import: dict[str, Any] | None, imports: dict[str, Any] | None, res: dict[str, Any]
) -> list[str]:
    out = ["### 5b. `rk serve-mcp` imports", ""]
    if imports and "error" not in imports:
        out += [
            "`python -X importtime` over a whole `rk serve-mcp` start on stdio (stdin at end of file, so it "
            "starts, reads EOF "
            f"and exits; median of {imports['runs']} runs): {fmt(imports['total_ms'], 0)} ms of imports, "
            f"{imports['modules_loaded']} modules a "
            "bare interpreter does not load. Self time by package (whose code runs at import):",
            "",
            *table(
                ["Package", "Self ms"],
                [[f"`{p['package']}`", fmt(p["self_ms"], 1)] for p in imports["by_package"]],
                "lr",
            ),
            "",
            "Slowest single modules (self time):",
            "",
            *table(
                ["Module", "Self ms", "Imported by"],
                [
                    [
                        f"`{t['module']}`",
                        fmt(t["self_ms"], 1),
                        f"`{t['imported_by']}`" if t["imported_by"] else "",
                    ]
                    for t in imports["top_self"]
                ],
                "lrl",
            ),
            "",
        ]
    elif imports:
        out += [f"Import times not measured: {imports['error']}.", ""]
    if serve_import and "error" not in serve_import:
        out += [
            "The same top-level imports as one command, "
            f'`python -c "import {", ".join(serve_import["modules"][:4])}, ..."` '
            f"({len(serve_import['modules'])} modules), against `python -c pass`, {serve_import['rounds']} "
            "alternated rounds: "
            f"{fmt(serve_import['imports_p50_ms'], 0)} ms vs {fmt(serve_import['python_p50_ms'], 1)} ms, "
            f"ratio of medians **{fmt(serve_import['ratio_of_medians'], 1)}** "
            f"(per round: {', '.join(fmt(x, 1) for x in serve_import['round_ratios'])}). No goal is set for "
            "this ratio; it bounds the stdio start below.",
            "",
        ]
    stdio_ms = stdio_start_ms(res)
    if stdio_ms is not None:
        ok = stdio_ms <= 1000
        src = (
            "section 2's rounds"
            if res.get("mcp") and res["mcp"].get("servers")
            else "its own rounds (section 2 not run)"
        )
        out += [
            "### 5c. `rk serve-mcp` stdio: spawn to first `tools/list`",
            "",
            f"Median {fmt(stdio_ms, 0)} ms (from {src}; through `mcp.Client` over stdio). Issue 3's goal <= "
            f"1 s: {met(ok)}." + ("" if ok else " " + why_mcp_start(res) + "."),
            "",
        ]
    return out
