"""`rk eval report`: an eval folder's summary as text and markdown tables, and a reliability
diagram (PNG, matplotlib's Agg backend; matplotlib is in the `eval` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonkit.errors import EvalError
from reasonkit.eval.metrics import reliability
from reasonkit.eval.results import load_summary

__all__ = [
    "DIAGRAM_PNG",
    "REPORT_MD",
    "ROWS",
    "heading",
    "reliability_png",
    "render_markdown",
    "render_text",
    "write_report",
]

ROWS = (
    ("n", "n"),
    ("accuracy", "accuracy"),
    ("mean confidence", "mean_confidence"),
    ("ECE (15 equal-width bins)", "ece_equal_width"),
    ("ECE (15 equal-mass bins)", "ece_equal_mass"),
    ("Brier score", "brier"),
    ("AUROC (confidence vs correct)", "auroc"),
    ("selective accuracy @50% coverage", "selective_accuracy_50"),
    ("selective accuracy @80% coverage", "selective_accuracy_80"),
    ("tokens", "tokens"),
    ("cost (USD)", "cost_usd"),
    ("time (s)", "time_s"),
    ("errors", "errors"),
)
REPORT_MD = "report.md"
DIAGRAM_PNG = "reliability.png"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:g}"
    return str(value)


def _cell(arm: dict[str, Any], key: str) -> str:
    """A metric with its 95% interval beside it: `0.62 [0.51, 0.73]`."""
    interval = (arm.get("intervals") or {}).get(key)
    text = _fmt(arm.get(key))
    return f"{text} [{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else text


def _notes(arms: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [f"warning ({name}): {arm['note']}" for name, arm in arms if arm.get("note")]


def _arms(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    label = f"{summary['target']['kind']} {summary['target']['name']}"
    arms = [(label, summary["tool"])]
    if summary.get("tool_raw"):
        arms.append((f"{label} (uncalibrated)", summary["tool_raw"]))
    if summary.get("direct"):
        arms.append(("direct (1 call)", summary["direct"]))
    return arms


def _multiples(summary: dict[str, Any]) -> str:
    m = summary.get("multiples")
    if not m:
        return "no direct baseline"
    parts = [
        f"{k} {_fmt(m[k])}x" if m[k] is not None else f"{k} - (baseline 0)"
        for k in ("tokens", "cost", "time")
    ]
    return "tool / direct: " + ", ".join(parts)


def heading(summary: dict[str, Any]) -> str:
    target = summary["target"]
    return (
        f"{target['kind']} {target['name']} on {summary['dataset']} (seed {summary.get('seed')}), "
        f"model {summary.get('model')} ({summary.get('provider')})"
    )


def render_text(summary: dict[str, Any]) -> str:
    arms = _arms(summary)
    width = max(len(label) for label, _ in ROWS) + 2
    col = max(26, *(len(name) + 2 for name, _ in arms))
    lines = [heading(summary), "", " " * width + "".join(f"{name:>{col}}" for name, _ in arms)]
    for label, key in ROWS:
        lines.append(f"{label:<{width}}" + "".join(f"{_cell(arm, key):>{col}}" for _, arm in arms))
    lines += ["", "[low, high]: 95% bootstrap interval", _multiples(summary), *_notes(arms)]
    return "\n".join(lines)


def render_markdown(summary: dict[str, Any], diagram: str | None = None) -> str:
    arms = _arms(summary)
    lines = [f"# Eval: {heading(summary)}", "", "| metric | " + " | ".join(n for n, _ in arms) + " |"]
    lines.append("|---|" + "---:|" * len(arms))
    for label, key in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(arm, key) for _, arm in arms) + " |")
    lines += ["", "[low, high]: 95% bootstrap interval. " + _multiples(summary) + ".", ""]
    lines += [f"**{note}**\n" for note in _notes(arms)]
    if diagram:
        lines += [f"![reliability diagram]({diagram})", ""]
    return "\n".join(lines)


def reliability_png(rows: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EvalError("rk eval report needs matplotlib: pip install 'reasonkit[eval]'") from None
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=100)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for arm, marker in (("tool", "o"), ("direct", "s")):
        chosen = [r for r in rows if r["arm"] == arm]
        if not chosen:
            continue
        bins = reliability(
            [float(r.get("confidence") or 0.0) for r in chosen], [bool(r["correct"]) for r in chosen]
        )
        points = [(b["confidence"], b["accuracy"], b["n"]) for b in bins if b["n"]]
        label = summary["target"]["name"] if arm == "tool" else "direct (1 call)"
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        (line,) = ax.plot(xs, ys, linewidth=0.8, alpha=0.6, label=f"{label} (n={len(chosen)})")
        # marker area grows with the items in the bin: a one-item bin is not a finding
        ax.scatter(xs, ys, s=[12 + 10 * p[2] for p in points], marker=marker, color=line.get_color())
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (mean in bin, 15 equal-width bins; marker area ~ items)")
    ax.set_ylabel("accuracy in bin")
    ax.set_title(f"{summary['target']['name']} on {summary['dataset']}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(directory: Path | str) -> tuple[Path, Path]:
    """Write report.md and reliability.png into the eval folder; their paths."""
    log, summary, rows = load_summary(directory)
    if not rows:
        raise EvalError(f"{log.dir} holds no finished items yet")
    png = log.dir / DIAGRAM_PNG
    reliability_png(rows, summary, png)
    md = log.dir / REPORT_MD
    md.write_text(render_markdown(summary, DIAGRAM_PNG), encoding="utf-8")
    return md, png
