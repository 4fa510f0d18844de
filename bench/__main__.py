"""`python -m bench`: run the benchmarks and write docs/benchmarks.md (see --help)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from bench.report import REPO, render_markdown
from bench.suite import SECTIONS, Settings, run_suite

_ALIASES = {"critical_path": "critical-path", "critical": "critical-path", "profiles": "critical-path", "cli": "startup"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure engine overhead, profile scheduling and CLI start-up; write a Markdown report.",
    )
    ap.add_argument("--quick", action="store_true", help="tiny setting (seconds, not minutes): a smoke run, not a measurement")
    ap.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this section ({', '.join(SECTIONS)}); repeatable. The report then has only those sections.",
    )
    ap.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"), help="Markdown report path, '-' for stdout (default: docs/benchmarks.md)")
    ap.add_argument("--json", dest="json_path", metavar="PATH", help="also write the raw results as JSON")
    ap.add_argument(
        "--profiler",
        choices=("auto", "pyinstrument", "cprofile", "none"),
        default="auto",
        help="profiler for the hot-spot table (auto: pyinstrument if installed, else cProfile)",
    )
    args = ap.parse_args(argv)

    sections: tuple[str, ...] = SECTIONS
    if args.only:
        chosen = []
        for name in args.only:
            name = _ALIASES.get(name, name)
            if name not in SECTIONS:
                ap.error(f"--only: unknown section {name!r} (choose from {', '.join(SECTIONS)})")
            chosen.append(name)
        sections = tuple(s for s in SECTIONS if s in chosen)

    shown = list(sys.argv[1:] if argv is None else argv)
    command = "python -m bench" + (" " + shlex.join(shown) if shown else "")
    settings = Settings.quick() if args.quick else Settings.full()
    res = run_suite(settings, sections, profiler=args.profiler, command=command)

    md = render_markdown(res)
    if args.out == "-":
        sys.stdout.write(md)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md, encoding="utf-8")
        print(f"[bench] wrote {out}", file=sys.stderr)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")
        print(f"[bench] wrote {args.json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
