"""The chart in docs/ (matplotlib, installed only into .bench-venv): one PNG, one panel per comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"ReasonKit": "#2f6db5", "peer": "#d9822b", "ref": "#9aa5b1", "floor": "#d3d9df"}


def matplotlib_available() -> str | None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed in this environment (it is in .bench-venv; run without --no-venv)"
    return None


def _bars(
    ax: Any,
    groups: list[str],
    series: list[tuple[str, list[float], str]],
    ylabel: str,
    title: str,
    log: bool = False,
) -> None:
    n = len(series)
    width = 0.8 / max(n, 1)
    for i, (label, values, color) in enumerate(series):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=label, color=color)
        for b, v in zip(bars, values, strict=True):
            if v == v and v > 0:
                ax.annotate(
                    f"{v:.0f}" if v >= 100 else f"{v:.3g}",
                    (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    if log:
        ax.set_yscale("log")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, frameon=False)


def _panels(res: dict[str, Any]) -> list[tuple[str, Any]]:
    """(panel kind, its data) for each section that ran and has something to draw, in chart order."""
    panels: list[tuple[str, Any]] = []
    pv = res.get("provider")
    if pv and "error" not in pv:
        panels.append(("provider_added", pv))
        panels.append(("provider_conc", pv))
    mc = res.get("mcp")
    if mc and mc.get("servers") and "sequential_thinking" in mc["servers"]:
        panels.append(("mcp", mc))
    ld = res.get("load")
    if ld and "error" not in ld:
        panels.append(("load", ld))
    if res.get("startup") and "error" not in res["startup"]:
        panels.append(("startup", res))
    ov = res.get("overhead")
    if ov:
        panels.append(("engine", res))
    return panels


def render_chart(res: dict[str, Any], path: Path) -> str | None:
    """Write the PNG; None when done, else why not."""
    why = matplotlib_available()
    if why:
        return why
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(res)
    if not panels:
        return "no section with a chart was run"
    cols = 3 if len(panels) > 2 else len(panels)
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (kind, data) in zip(axes.flat, panels, strict=False):
        if kind in ("provider_added", "provider_conc"):
            lats = sorted({r["latency_ms"] for r in data["rows"]})
            by = {(r["arm"], r["latency_ms"]): r for r in data["rows"]}
            key = "added_ms" if kind == "provider_added" else "conc_throughput"
            arms = [
                ("reasonkit", "ReasonKit", COLORS["ReasonKit"]),
                ("litellm", "LiteLLM", COLORS["peer"]),
                ("openai_sdk", "bare OpenAI SDK", COLORS["ref"]),
            ]
            series = [(label, [by[(a, lat)][key] for lat in lats], color) for a, label, color in arms]
            groups = [f"server {lat:g} ms" for lat in lats]
            if kind == "provider_added":
                _bars(
                    ax,
                    groups,
                    series,
                    "ms per call over the server's latency",
                    "1. Provider layer: added latency per call (lower is better)",
                )
            else:
                c = data["settings"]["concurrency"]
                _bars(
                    ax,
                    groups,
                    series,
                    "calls per second",
                    f"1. Provider layer: throughput at {c} in flight (higher is better)",
                )
        elif kind == "mcp":
            rk, st = data["servers"]["reasonkit"], data["servers"]["sequential_thinking"]
            series = [
                (
                    "ReasonKit",
                    [rk["spawn_p50_ms"], rk["rt_p50_ms"], rk["raw_rt_p50_ms"]],
                    COLORS["ReasonKit"],
                ),
                (
                    "sequential-thinking (Node)",
                    [st["spawn_p50_ms"], st["rt_p50_ms"], st["raw_rt_p50_ms"]],
                    COLORS["peer"],
                ),
            ]
            _bars(
                ax,
                ["spawn to tools/list", "tools/list (client)", "tools/list (raw)"],
                series,
                "ms (log scale)",
                "2. MCP over stdio (lower is better)",
                log=True,
            )
        elif kind == "load":
            load_arms = [("uncached", "uncached"), ("cached", "cached"), ("faults", "10% faults")]
            series = [
                ("p50", [data[a]["overhead_p50_ms"] for a, _ in load_arms], COLORS["ref"]),
                ("p99", [data[a]["overhead_p99_ms"] for a, _ in load_arms], COLORS["ReasonKit"]),
            ]
            n = data["settings"]["calls"]
            _bars(
                ax,
                [label for _, label in load_arms],
                series,
                "ms over the provider latency",
                f"4. {n} concurrent HTTP tool calls: overhead",
            )
            ax.axhline(data["goals"]["p99_overhead_ms"], color="#c0392b", linestyle="--", linewidth=1)
            ax.annotate(
                "goal p99",
                (len(load_arms) - 0.6, data["goals"]["p99_overhead_ms"]),
                fontsize=7,
                color="#c0392b",
                va="bottom",
            )
        elif kind == "startup":
            st = data["startup"]
            vals = [("rk --version", st["ratio_of_medians"])]
            si = data.get("serve_import")
            if si and "error" not in si:
                vals.append(("rk serve-mcp imports", si["ratio_of_medians"]))
            _bars(
                ax,
                [v[0] for v in vals],
                [("ratio to python -c pass", [v[1] for v in vals], COLORS["ReasonKit"])],
                "x python -c pass (log scale)",
                "5. Start-up",
                log=True,
            )
        elif kind == "engine":
            o = data["overhead"]["overall"]
            series = [("p50", [o["p50_ms"]], COLORS["ReasonKit"]), ("p95", [o["p95_ms"]], COLORS["ref"])]
            _bars(
                ax,
                ["per LLM call"],
                series,
                "ms",
                "3. Engine: orchestration overhead (zero-latency provider)",
            )
            ax.axhline(data["overhead"]["goal_ms"], color="#c0392b", linestyle="--", linewidth=1)
    m = res["machine"]
    fig.suptitle(
        f"ReasonKit benchmarks ({res['setting']} setting) — {m['cpu']}, {m['cores_usable']} cores, "
        f"{m['date']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
