"""`.ci/run`'s check that the installed llama-cpp-python can decode on this CPU: a few tokens of the
bundled SmolLM2 model in a child process, so a crash (a native build using CPU features the kernel
does not enable) is an exit status, not the end of the caller. Exit 0 when it decodes, or when there
is nothing to check (no llama_cpp, no bundled model)."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
from llama_cpp import Llama
from reasonkit.providers.local import bundled_model_path
path = bundled_model_path()
if path is not None:
    llm = Llama(model_path=str(path), n_ctx=256, verbose=False)
    llm.create_completion("Hello, my name is", max_tokens=4)
    llm.close()
"""


def main() -> int:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return 0
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        print(
            f"llama-cpp-python cannot decode here (exit {proc.returncode}): {proc.stderr[-500:]}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
