"""`rk models list|use`: the local models on this machine, how fast each runs here, and switching
between them without editing TOML by hand (providers/local_models.py finds and measures them)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reasonkit.cli.common import EXIT_FAILED, fail, load_settings, write_atomically

if TYPE_CHECKING:
    from reasonkit.config import Settings
    from reasonkit.providers.local_models import LocalModel

USER_CONFIG = Path("~/.config/reasonkit/config.toml")


@click.group()
def models() -> None:
    """The local models: list them (with tokens/s on this machine), switch between them."""


def _speed_text(entry: dict[str, Any] | None) -> str:
    return f"{entry['tokens_per_s']:.1f} tok/s" if entry else "not measured"


def _measure(settings: Settings, model: LocalModel) -> dict[str, Any] | str:
    """Measure `model` now and keep the figure; the error text when it cannot run."""
    import anyio

    from reasonkit.errors import ReasonKitError
    from reasonkit.providers.local import LocalOptions, llama_cpp_installed
    from reasonkit.providers.local_models import SpeedCache, measure

    if not llama_cpp_installed():
        return "cannot measure: llama-cpp-python is not installed (pip install 'reasonkit[local]')"
    options = LocalOptions.from_settings(settings)
    try:
        tokens_per_s, tokens = anyio.run(measure, model.path, options)
    except (ReasonKitError, ValueError, OSError) as exc:  # llama.cpp raises ValueError on a bad file
        return f"cannot measure: {exc}"
    cache = SpeedCache(settings.data_dir())
    cache.put(model.path, options.n_threads, tokens_per_s, tokens)
    return cache.get(model.path, options.n_threads) or {}


@models.command("list")
@click.option("--measure", is_flag=True, help="Measure each model's tokens/s now (a few seconds each).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def models_list(ctx: click.Context, measure: bool, fmt: str) -> None:
    """The embedded default, GGUF models shipped in installed Python packages, and the configured
    file; `*` marks the one the local provider runs. Speeds were measured on this machine."""
    from reasonkit.providers.local_models import SpeedCache, installed_models

    settings = load_settings(ctx)
    threads = settings.llm.local.n_threads
    cache = SpeedCache(settings.data_dir())
    rows: list[tuple[LocalModel, dict[str, Any] | None, str | None]] = []
    for model in installed_models(settings.llm.local.model_path):
        if not model.path.is_file():
            rows.append((model, None, "file missing"))
            continue
        speed: dict[str, Any] | str | None = None
        if measure:
            click.echo(f"measuring {model.name} ...", err=True)
            speed = _measure(settings, model)
        else:
            speed = cache.get(model.path, threads)
        rows.append((model, None, speed) if isinstance(speed, str) else (model, speed, None))
    if fmt == "json":
        data = [
            {
                "name": m.name,
                "path": str(m.path),
                "source": m.source,
                "in_use": m.in_use,
                "size_mb": round(m.size_mb, 1),
                "tokens_per_s": e["tokens_per_s"] if e else None,
                "measured_at": e["measured_at"] if e else None,
                "error": err,
            }
            for m, e, err in rows
        ]
        click.echo(json.dumps(data, indent=2))
        return
    if not rows:
        click.echo("no local models: pip install 'reasonkit[local]' installs the embedded SmolLM2")
        return
    for m, e, err in rows:
        mark = "*" if m.in_use else " "
        click.echo(f"{mark} {m.name:<32} {m.source:<28} {m.size_mb:7.1f} MB  {err or _speed_text(e)}")
        click.echo(f"    {m.path}")
    if not measure and any(e is None and err is None for _, e, err in rows):
        click.echo("measure the speeds on this machine: rk models list --measure", err=True)


def _config_path(ctx: click.Context) -> Path:
    """The file `rk models use` writes: --config, else $REASONKIT_CONFIG, else the user's file."""
    chosen = (ctx.obj or {}).get("config") or os.environ.get("REASONKIT_CONFIG")
    return Path(chosen).expanduser() if chosen else USER_CONFIG.expanduser()


def _rewrite(path: Path, model: Path | None) -> str | None:
    """Set (or, for the default, remove) `[llm.local] model_path` in `path`, keeping every other
    key; returns where the old file was kept when it had comments (tomli-w cannot keep them)."""
    import tomli_w

    from reasonkit.errors import TomlFileError
    from reasonkit.tomlfile import read_toml

    data: dict[str, Any] = {}
    backup = None
    if path.exists():
        try:
            data = read_toml(path)
        except TomlFileError as exc:
            fail(f"{path}: {exc}; fix it before rk models use changes it")
        text = path.read_text(encoding="utf-8")
        if any(line.lstrip().startswith("#") for line in text.splitlines()):
            backup = path.with_name(path.name + ".bak")
            write_atomically(backup, text)
    llm = data.setdefault("llm", {})
    local = llm.setdefault("local", {}) if isinstance(llm, dict) else None
    if not isinstance(local, dict):
        fail(f"{path}: [llm] and [llm.local] must be tables")
    if model is None:
        local.pop("model_path", None)
    else:
        local["model_path"] = str(model)
    write_atomically(path, tomli_w.dumps(data))
    return str(backup) if backup else None


@models.command("use")
@click.argument("model")
@click.pass_context
def models_use(ctx: click.Context, model: str) -> None:
    """Make MODEL the local provider's model: a .gguf file, an installed package that ships one
    (see rk models list), or `default` (the embedded SmolLM2). Writes [llm.local] model_path
    into your config file (--config, $REASONKIT_CONFIG, else ~/.config/reasonkit/config.toml)."""
    from reasonkit.errors import ModelChoiceError
    from reasonkit.providers.local_models import resolve_choice

    try:
        chosen = resolve_choice(model)
    except ModelChoiceError as exc:
        fail(str(exc), EXIT_FAILED)
    path = _config_path(ctx)
    backup = _rewrite(path, chosen)
    what = str(chosen) if chosen else "the embedded default model"
    click.echo(f"local model: {what} (written to {path})")
    if backup:
        click.echo(f"comments are not kept when rk rewrites the file: the previous one is {backup}", err=True)
    if os.environ.get("LOCAL_MODEL_PATH"):
        click.echo("note: LOCAL_MODEL_PATH is set in this environment and wins over the file", err=True)
    settings = load_settings(ctx)
    if settings.llm.default_provider not in (None, "local"):
        click.echo(
            f"note: [llm] default_provider is {settings.llm.default_provider!r}: the local model "
            "runs with --provider local",
            err=True,
        )
