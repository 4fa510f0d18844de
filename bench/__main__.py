"""`python -m bench`: run the benchmarks and write docs/benchmarks.md and its chart (see --help).

Unless --no-venv is given, the command first makes sure the bench-only environment exists
(.bench-venv/: the product as an editable install plus bench/requirements.txt — LiteLLM, matplotlib,
py-spy) and re-runs itself inside it; see bench/env.py."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from bench.common import REPO, say

SECTION_NAMES = (
    "provider",
    "mcp",
    "overhead",
    "critical-path",
    "memory",
    "load",
    "startup",
    "local",
    "store",
    "admission",
    "floors",
)
_ALIASES = {
    "critical_path": "critical-path",
    "critical": "critical-path",
    "profiles": "critical-path",
    "cli": "startup",
    "litellm": "provider",
    "peer": "mcp",
    "stdio": "mcp",
    "server": "load",
    "http": "load",
    "engine": "overhead",
    "decode": "local",
    "llama": "local",
    "postgres": "store",
    "workers": "admission",
    "refusals": "admission",
    "lean": "floors",
    "cpu": "floors",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark ReasonKit against LiteLLM and the official sequential-thinking MCP server, "
        "plus the engine, the HTTP server under load and start-up; write a Markdown report with a chart.",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="tiny setting (well under a minute): a smoke run, not a measurement",
    )
    ap.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this section ({', '.join(SECTION_NAMES)}); repeatable. "
        "The report then has only those sections.",
    )
    ap.add_argument(
        "--out",
        default=str(REPO / "docs" / "benchmarks.md"),
        help="Markdown report path, '-' for stdout (default: docs/benchmarks.md)",
    )
    ap.add_argument(
        "--chart",
        default=None,
        help="chart PNG path (default: next to the report, benchmarks.png; 'none' for no chart)",
    )
    ap.add_argument("--json", dest="json_path", metavar="PATH", help="also write the raw results as JSON")
    ap.add_argument(
        "--profiler",
        choices=("auto", "pyinstrument", "cprofile", "none"),
        default="auto",
        help="profiler for section 3a's hot-spot table (auto: pyinstrument if installed, else cProfile)",
    )
    ap.add_argument(
        "--no-venv",
        action="store_true",
        help="run in this interpreter instead of .bench-venv/ (sections needing LiteLLM are skipped)",
    )
    ap.add_argument(
        "--no-install",
        action="store_true",
        help="never install anything (use .bench-venv/ and bench/.node/ as they are)",
    )
    args = ap.parse_args(argv)

    sections: tuple[str, ...] = SECTION_NAMES
    if args.only:
        chosen = []
        for name in args.only:
            name = _ALIASES.get(name, name)
            if name not in SECTION_NAMES:
                ap.error(f"--only: unknown section {name!r} (choose from {', '.join(SECTION_NAMES)})")
            chosen.append(name)
        sections = tuple(s for s in SECTION_NAMES if s in chosen)

    shown = list(sys.argv[1:] if argv is None else argv)
    if not args.no_venv:
        from bench.env import in_bench_venv, reexec_in_bench_venv

        if not in_bench_venv():
            reexec_in_bench_venv(shown, say, install=not args.no_install)  # does not return

    from bench.suite import SECTIONS, Settings, run_suite

    assert SECTIONS == SECTION_NAMES
    from bench.report import render_markdown

    command = "python -m bench" + (" " + shlex.join(shown) if shown else "")
    settings = Settings.quick() if args.quick else Settings.full()
    res = run_suite(
        settings,
        sections,
        profiler=args.profiler,
        command=command,
        install=not args.no_install,
        progress=say,
    )

    chart_rel: str | None = None
    if args.chart != "none":
        from bench.chart import render_chart

        if args.chart:
            chart_path = Path(args.chart)
        elif args.out == "-":
            chart_path = None
        else:
            chart_path = Path(args.out).with_suffix(".png")
        if chart_path is not None:
            why = render_chart(res, chart_path)
            if why:
                say(f"no chart: {why}")
            else:
                say(f"wrote {chart_path}")
                base = Path(args.out).parent if args.out != "-" else Path.cwd()
                try:
                    chart_rel = str(chart_path.resolve().relative_to(base.resolve()))
                except ValueError:
                    chart_rel = str(chart_path.resolve())

    md = render_markdown(res, chart=chart_rel)
    if args.out == "-":
        sys.stdout.write(md)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md, encoding="utf-8")
        say(f"wrote {out}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")
        say(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
