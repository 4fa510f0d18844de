"""CLI start-up: `rk --version` against `python -c pass`, and what `import reasonkit.cli` imports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import median, percentile

STARTUP_GOAL = 3.0

_IMPORTTIME = re.compile(r"^import time:\s*(\d+)\s*\|\s*(\d+)\s*\|(\s*)(\S+)\s*$")


def _env() -> dict[str, str]:
    # Bytecode caching on, as for an installed package (CI may set PYTHONDONTWRITEBYTECODE=1, which
    # would make every start recompile the editable sources and measure the compiler instead).
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def find_rk(python: str) -> str | None:
    """The `rk` console script next to this interpreter (the venv's), else the one on PATH."""
    here = Path(python).parent
    for name in ("rk", "rk.exe"):
        if (here / name).exists():
            return str(here / name)
    return shutil.which("rk")


def _time_once(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - t0


def bench_startup(
    rounds: int = 20,
    warmup: int = 3,
    *,
    python: str | None = None,
    rk: str | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Median wall time of `rk --version` and `python -c pass` (and, as the floor a lighter entry point
    could reach, a bare `import reasonkit` that prints the version); each round runs all three in a
    rotating order, and the per-round ratio is rk / python."""
    python = python or sys.executable
    rk = rk or find_rk(python)
    if rk is None:
        return {"error": "no `rk` executable found (install the package: pip install -e .)"}
    env = _env()
    rk_cmd, py_cmd = [rk, "--version"], [python, "-c", "pass"]
    # The floor for `rk --version`: the interpreter plus the reasonkit package, without the CLI module.
    floor_code = "import reasonkit; print('rk', reasonkit.__version__)"
    floor_cmd = [python, "-c", floor_code]
    cmds = {"rk": rk_cmd, "python": py_cmd, "floor": floor_cmd}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    try:
        version = subprocess.run(rk_cmd, capture_output=True, text=True, env=env, check=True).stdout.strip()
        for _ in range(warmup):
            for cmd in cmds.values():
                _time_once(cmd, env)
        names = list(cmds)
        for r in range(rounds):
            order = names[r % 3 :] + names[: r % 3]  # rotate, so each command goes first, second and last
            for name in order:
                times[name].append(_time_once(cmds[name], env))
    except subprocess.CalledProcessError as exc:
        return {"error": f"{' '.join(exc.cmd)} exited with status {exc.returncode}"}
    rk_s, py_s, floor_s = times["rk"], times["python"], times["floor"]
    ratios = [a / b for a, b in zip(rk_s, py_s, strict=True)]
    rk_med, py_med = median(rk_s), median(py_s)
    progress(f"startup: rk --version {rk_med * 1000:.1f} ms, python -c pass {py_med * 1000:.1f} ms")
    return {
        "goal_ratio": STARTUP_GOAL,
        "rounds": rounds,
        "warmup": warmup,
        "rk": rk,
        "python": python,
        "version_output": version,
        "rk_ms": [x * 1000 for x in rk_s],
        "python_ms": [x * 1000 for x in py_s],
        "round_ratios": ratios,
        "rk_p50_ms": rk_med * 1000,
        "python_p50_ms": py_med * 1000,
        "ratio_of_medians": rk_med / py_med,
        "ratio_p50": median(ratios),
        "ratio_p10": percentile(ratios, 10),
        "ratio_p90": percentile(ratios, 90),
        "floor_command": f'python -c "{floor_code}"',
        "floor_ms": [x * 1000 for x in floor_s],
        "floor_p50_ms": median(floor_s) * 1000,
        "floor_ratio_of_medians": median(floor_s) / py_med,
        "met": rk_med / py_med <= STARTUP_GOAL,
    }


def parse_importtime(stderr: str) -> list[dict[str, Any]]:
    """Lines of `python -X importtime` as dicts (self_us, cumulative_us, depth, module, parent),
    in the order printed (a module's imports come before it)."""
    rows: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if m:
            rows.append(
                {"self_us": int(m[1]), "cumulative_us": int(m[2]), "depth": len(m[3]) // 2, "module": m[4]}
            )
    for i, row in enumerate(rows):
        row["parent"] = next((r["module"] for r in rows[i + 1 :] if r["depth"] < row["depth"]), None)
    return rows


def import_times(
    module: str = "reasonkit.cli",
    runs: int = 5,
    top: int = 5,
    *,
    python: str | None = None,
    code: str | None = None,
    label: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`python -X importtime -c "import <module>"` (or `-c CODE`), `runs` times; the modules that
    pulls in (those a bare `python -c pass` does not load), ranked by median cumulative time. With
    `code`, the total is the sum of the top-level imports' cumulative times."""
    python = python or sys.executable
    env = env or _env()
    base = subprocess.run([python, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, env=env)
    startup = {r["module"] for r in parse_importtime(base.stderr)}
    per: dict[str, dict[str, Any]] = {}
    total: list[int] = []
    roots: list[str] = []
    for _ in range(runs):
        proc = subprocess.run(
            [python, "-X", "importtime", "-c", code or f"import {module}"],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            return {"error": f"{label or 'import ' + module} failed: {proc.stderr.strip().splitlines()[-1:]}"}
        run_total = 0
        for row in parse_importtime(proc.stderr):
            if row["module"] in startup:
                continue
            if code is not None and row["depth"] == 0:
                run_total += row["cumulative_us"]
                if row["module"] not in roots:
                    roots.append(row["module"])
            if code is None and row["module"] == module:
                total.append(row["cumulative_us"])
                continue
            d = per.setdefault(
                row["module"],
                {
                    "module": row["module"],
                    "cum": [],
                    "self": [],
                    "depth": row["depth"],
                    "parent": row["parent"],
                },
            )
            d["cum"].append(row["cumulative_us"])
            d["self"].append(row["self_us"])
        if code is not None:
            total.append(run_total)
    ranked = sorted(per.values(), key=lambda d: -median(d["cum"]))
    return {
        "module": label or module,
        "top_level_modules": roots,
        "runs": runs,
        "total_ms": median(total) / 1000 if total else None,
        "modules_loaded": len(per) + 1,
        "top": [
            {
                "module": d["module"],
                "cumulative_ms": median(d["cum"]) / 1000,
                "self_ms": median(d["self"]) / 1000,
                "depth": d["depth"],
                "imported_by": d["parent"],
            }
            for d in ranked[:top]
        ],
        "top_self": [
            {"module": d["module"], "self_ms": median(d["self"]) / 1000, "imported_by": d["parent"]}
            for d in sorted(per.values(), key=lambda d: -median(d["self"]))[:top]
        ],
        "by_package": [
            {"package": pkg, "self_ms": ms}
            for pkg, ms in sorted(_by_package(per).items(), key=lambda kv: -kv[1])
        ][:top],
        "package_self_ms": _by_package(per),
    }


def _by_package(per: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Median self time summed per top-level package (reasonkit by subpackage): whose code runs."""
    out: dict[str, float] = {}
    for d in per.values():
        parts = d["module"].split(".")
        pkg = ".".join(parts[:2]) if parts[0] == "reasonkit" and len(parts) > 1 else parts[0]
        out[pkg] = out.get(pkg, 0.0) + median(d["self"]) / 1000
    return out


# What `rk serve-mcp` (stdio) imports, measured by running it: the console script's entry point with
# stdin at end of file, so the server starts, reads EOF and exits.
SERVE_MCP_CODE = "import sys; sys.argv = ['rk', 'serve-mcp']; from reasonkit._entry import main; main()"


def serve_mcp_import_times(runs: int = 3, top: int = 8, *, python: str | None = None) -> dict[str, Any]:
    """`python -X importtime` over a whole `rk serve-mcp` start (stdio, stdin closed at once)."""
    import tempfile

    home = tempfile.mkdtemp(prefix="rk-bench-import-")
    env = {**_env(), "HOME": home, "REASONKIT_DATA_DIR": os.path.join(home, "data")}
    for k in [k for k in env if k.startswith(("REASONKIT_CONFIG", "OPENAI_", "ANTHROPIC_", "LLM_"))]:
        env.pop(k)
    return import_times(runs=runs, top=top, python=python, code=SERVE_MCP_CODE, label="rk serve-mcp", env=env)


def bench_import_ratio(
    modules: list[str], rounds: int = 10, warmup: int = 2, *, python: str | None = None
) -> dict[str, Any]:
    """Wall time of `python -c "import <modules>"` against `python -c pass`, alternated; per-round ratios."""
    python = python or sys.executable
    env = _env()
    code = "import " + ", ".join(modules)
    cmds = {"imports": [python, "-c", code], "python": [python, "-c", "pass"]}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    try:
        for _ in range(warmup):
            for cmd in cmds.values():
                _time_once(cmd, env)
        for r in range(rounds):
            for name in ["imports", "python"] if r % 2 == 0 else ["python", "imports"]:
                times[name].append(_time_once(cmds[name], env))
    except subprocess.CalledProcessError as exc:
        return {"error": f"{' '.join(exc.cmd)[:200]} exited with status {exc.returncode}"}
    ratios = [a / b for a, b in zip(times["imports"], times["python"], strict=True)]
    return {
        "modules": modules,
        "rounds": rounds,
        "imports_p50_ms": median(times["imports"]) * 1000,
        "python_p50_ms": median(times["python"]) * 1000,
        "ratio_of_medians": median(times["imports"]) / median(times["python"]),
        "round_ratios": ratios,
        "ratio_p50": median(ratios),
    }
