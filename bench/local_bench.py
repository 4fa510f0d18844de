"""The embedded local model: wall time and tokens/s of the `quick` and `balanced` profiles on the
in-process SmolLM2-135M (with the small-model caps of `[llm.local]`), and the time per call that
output-mode negotiation adds once the mode is known (an `openai` provider negotiating "auto" after
its first call vs. the same provider with the mode forced; against a fake server with no latency,
so only our client-side cost is measured; goal: none).

    python -m bench.local_bench [--out FILE] [--calls N] [--skip-profiles]

Prints a markdown table (and writes it to FILE). Needs `pip install 'reasonkit[local]'`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Any

import anyio

QUESTION = "Should a small bakery start selling its bread online?"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["answer", "confidence"],
    "properties": {
        "answer": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}


async def profile_rows(profiles: list[str]) -> list[dict[str, Any]]:
    from reasonkit.config import Settings
    from reasonkit.engine import Engine
    from reasonkit.engine.caps import StepCaps
    from reasonkit.protocol.loader import load_registry
    from reasonkit.providers.local import build_local_provider

    settings = Settings()
    local = settings.llm.local
    caps = StepCaps(local.max_items or None, local.max_tokens or None, local.samples or None)
    provider = build_local_provider(settings)
    engine = Engine(load_registry(), provider, caps=caps)
    started = time.perf_counter()
    await provider.complete(_request("Say hello.", 8))  # load the model: not part of a profile's time
    load_s = time.perf_counter() - started
    rows = [{"what": "model load + first call", "wall_s": load_s}]
    for profile in profiles:
        started = time.perf_counter()
        result = await engine.run_profile(profile, {"query": QUESTION})
        wall = time.perf_counter() - started
        traces = [t for step in result.all_steps() for t in (step, *step.items)]  # for_each items too
        calls = [c for t in traces for c in t.calls]
        rows.append(
            {
                "what": f"profile `{profile}`",
                "wall_s": wall,
                "calls": len(calls),
                "input": result.tokens.input,
                "output": result.tokens.output,
                "tok_s": result.tokens.output / wall,
                "status": f"{result.status}, confidence {result.confidence:.2f}",
            }
        )
    return rows


def _request(text: str, max_tokens: int, schema: dict[str, Any] | None = None) -> Any:
    from reasonkit.providers.base import LLMRequest

    return LLMRequest(messages=[{"role": "user", "content": text}], schema=schema, max_tokens=max_tokens)


async def negotiation_rows(calls: int) -> list[dict[str, Any]]:
    from bench.fake_openai import InThreadServer
    from reasonkit.providers.base import PriceTable
    from reasonkit.providers.openai_compat import OpenAIProvider

    rows = []
    variants = (("mode forced (json_schema)", "json_schema"), ("auto, mode known", "auto"))
    with InThreadServer(latency=0.0) as server:
        providers = {
            label: OpenAIProvider(
                "openai", "gpt-4.1-mini", PriceTable.load(), None, server.base_url, 10.0, output_mode=mode
            )
            for label, mode in variants
        }
        for provider in providers.values():  # "auto" learns its mode here; both warm up
            for _ in range(20):
                await provider.complete(_request("warm up", 16, SCHEMA))
        timings: dict[str, list[float]] = {label: [] for label in providers}
        for _ in range(calls):  # interleaved, so drift (other load, GC) hits both alike
            for label, provider in providers.items():
                started = time.perf_counter()
                await provider.complete(_request("Is the sky blue?", 16, SCHEMA))
                timings[label].append((time.perf_counter() - started) * 1000)
        for provider in providers.values():
            await provider.aclose()
        base = statistics.median(timings[variants[0][0]])
        for label, samples in timings.items():
            median = statistics.median(samples)
            rows.append({"what": label, "median_ms": median, "added_ms": median - base, "calls": calls})
    return rows


def table(profile: list[dict[str, Any]], negotiation: list[dict[str, Any]]) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        "model SmolLM2-135M-Instruct Q4_1, caps max_items 4, max_tokens 384, samples 1.",
        "",
    ]
    if profile:
        lines += [
            "| run | wall s | calls | input tok | output tok | output tok/s (wall) | result |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in profile:
            if "calls" not in r:
                lines.append(f"| {r['what']} | {r['wall_s']:.1f} | | | | | |")
                continue
            lines.append(
                f"| {r['what']} | {r['wall_s']:.1f} | {r['calls']} | {r['input']} | {r['output']} | "
                f"{r['tok_s']:.1f} | {r['status']} |"
            )
        lines.append("")
    lines += [
        "| openai provider, fake server (no latency) | median ms per call "
        "| added by negotiation, ms | calls |",
        "|---|---:|---:|---:|",
    ]
    for r in negotiation:
        lines.append(f"| {r['what']} | {r['median_ms']:.2f} | {r['added_ms']:+.2f} | {r['calls']} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- decode threads (issue 26)
THREADS_CHILD = r"""
import json, sys, threading, time
arm, tokens = sys.argv[1], int(sys.argv[2])
from reasonkit.providers.local import bundled_model_path
PROMPT = "Count from 1 to 500, separated by commas: 1, 2, 3,"

def per_token(generate):
    # decode only: a short and a long generation of the same prompt (its evaluation is cached after
    # the first call and cancels out in the difference)
    ms_short, n_short = generate(8)
    ms_long, n_long = generate(tokens)
    return (ms_long - ms_short) / max(1, n_long - n_short)

def in_thread(fn):
    box = []
    t = threading.Thread(target=lambda: box.append(fn()))
    t.start(); t.join()
    return box[0]

out = {}
if arm == "raw":
    from llama_cpp import Llama
    llama = Llama(model_path=str(bundled_model_path()), n_ctx=1024, verbose=False)

    def generate(n):
        t0 = time.perf_counter()
        done = llama.create_completion(PROMPT, max_tokens=n, temperature=0.0, stop=[])
        return (time.perf_counter() - t0) * 1000, done["usage"]["completion_tokens"]

    generate(8)  # warm-up: the prompt's first evaluation, page cache
    out["raw, main thread"] = per_token(generate)
    out["raw, a second thread"] = in_thread(lambda: per_token(generate))
    out["raw, main thread again (two threads have decoded)"] = per_token(generate)
else:
    import anyio
    from reasonkit.providers.base import LLMRequest
    from reasonkit.providers.local import LocalOptions, LocalProvider
    provider = LocalProvider(bundled_model_path(), LocalOptions(max_tokens=0, n_ctx=1024, repeat_penalty=1.0))

    def generate(n):
        req = LLMRequest(messages=[{"role": "user", "content": PROMPT}], max_tokens=n, temperature=0.0)
        resp = anyio.run(provider.complete, req)
        return resp.latency_ms, resp.usage.output

    generate(8)  # warm-up: loads the model
    out["provider, from the event loop"] = per_token(generate)
    out["provider, from a second thread's event loop"] = in_thread(lambda: per_token(generate))
    out["provider, from the event loop again"] = per_token(generate)
print(json.dumps(out))
"""


def decode_thread_rows(tokens: int, rounds: int, before: str | None = None) -> list[dict[str, Any]]:
    """ms per generated token: raw llama-cpp-python on the main thread, then from a second thread,
    then on the main thread again; our provider the same way (each arm a fresh process, the arms
    alternating round by round); with `before`, the provider of that ReasonKit tree too."""
    import json
    import subprocess

    from bench.common import REPO, load_avg

    arms: list[tuple[str, str, str | None]] = [("raw", "", None), ("provider", "", None)]
    if before:
        arms.append(("provider", " [before]", before))
    rows = []
    for r in range(rounds):
        row: dict[str, Any] = {"round": r + 1, "loadavg": load_avg()}
        for arm, tag, tree in arms[r % len(arms) :] + arms[: r % len(arms)]:
            env = {**os.environ, "PYTHONPATH": tree} if tree else None
            done = subprocess.run(
                [sys.executable, "-c", THREADS_CHILD, arm, str(tokens)],
                cwd=tree or REPO, capture_output=True, text=True, check=True, env=env,
            )  # fmt: skip
            row.update({k + tag: v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()})
        rows.append(row)
    return rows


def threads_table(rows: list[dict[str, Any]]) -> str:
    keys = [k for k in rows[0] if k not in ("round", "loadavg")]
    base = "raw, main thread"
    lines = [
        "| ms per token (min / median / max) | " + " | ".join(f"round {r['round']}" for r in rows) + " |",
        "|---|" + "---:|" * len(rows),
        "| loadavg | " + " | ".join(str(r["loadavg"]) for r in rows) + " |",
    ]
    for k in keys:
        vals = sorted(r[k] for r in rows)
        spread = f"{vals[0]:.2f} / {statistics.median(vals):.2f} / {vals[-1]:.2f}"
        ratios = " | ".join(f"{r[k]:.2f} ({r[base] / r[k]:.2f}x)" for r in rows)
        lines.append(f"| {k}: {spread} | {ratios} |")
    return "\n".join(lines) + "\n\n(x: speed relative to raw on the main thread in the same round)\n"


async def main_async(args: argparse.Namespace) -> str:
    profile = [] if args.skip_profiles else await profile_rows(["quick", "balanced"])
    negotiation = await negotiation_rows(args.calls)
    return table(profile, negotiation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="also write the markdown table to this file")
    parser.add_argument("--calls", type=int, default=200, help="calls per negotiation variant (default 200)")
    parser.add_argument("--skip-profiles", action="store_true", help="only the negotiation comparison")
    parser.add_argument("--threads", action="store_true", help="only the decode-thread comparison (issue 26)")
    parser.add_argument("--tokens", type=int, default=96, help="tokens per timed generation (--threads)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (--threads)")
    parser.add_argument("--before", help="another ReasonKit tree whose provider to measure too (--threads)")
    args = parser.parse_args(argv)
    if args.threads:
        text = threads_table(decode_thread_rows(args.tokens, args.rounds, args.before))
    else:
        text = anyio.run(main_async, args)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
