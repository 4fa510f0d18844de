"""The local model catalogue: GGUF files shipped in installed distributions (found from their file
lists), the choice of `rk models use` (a path, a package, `default`), and the speed cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonkit.errors import ModelChoiceError
from reasonkit.providers.local import bundled_model_path
from reasonkit.providers.local_models import SpeedCache, installed_models, package_models, resolve_choice

GGUF = b"GGUF\x03\x00\x00\x00" + b"\x00" * 64


def install_dist(site: Path, name: str, files: dict[str, bytes]) -> list[Path]:
    """A distribution as pip leaves it in site-packages: its files, METADATA and RECORD."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    paths = []
    for rel, data in files.items():
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        paths.append(target)
    record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in record))
    return paths


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site-packages"
    install_dist(
        site,
        "tiny-gguf-model",
        {"tiny_gguf_model/data/tiny-q4.gguf": GGUF, "tiny_gguf_model/__init__.py": b""},
    )
    install_dist(site, "two-models", {"two_models/a.gguf": GGUF, "two_models/b.gguf": GGUF})
    install_dist(site, "no-models", {"no_models/__init__.py": b""})
    return site


def test_packages_shipping_gguf_files_are_found(site):
    found = package_models([str(site)])
    assert sorted(found) == ["tiny-gguf-model", "two-models"]
    assert [p.name for p in found["two-models"]] == ["a.gguf", "b.gguf"]


def test_installed_models_lists_default_packages_and_configured_once_each(site, tmp_path):
    own = tmp_path / "own.gguf"
    own.write_bytes(GGUF)
    models = installed_models(str(own), [str(site)])
    sources = {m.name: m.source for m in models}
    assert sources["tiny-q4"] == "package tiny-gguf-model" and sources["own"] == "configured"
    assert [m.name for m in models if m.in_use] == ["own"]
    default = bundled_model_path()
    if default is not None:  # the embedded SmolLM2 is installed: it comes first, not in use here
        assert models[0].is_default and models[0].path == default.resolve() and not models[0].in_use
    again = installed_models(str(site / "tiny_gguf_model/data/tiny-q4.gguf"), [str(site)])
    assert [m.source for m in again if m.name == "tiny-q4"] == ["package tiny-gguf-model"]  # once
    assert [m.name for m in again if m.in_use] == ["tiny-q4"]


def test_a_package_name_resolves_to_its_one_model(site):
    expected = (site / "tiny_gguf_model/data/tiny-q4.gguf").resolve()
    for spelling in ("tiny-gguf-model", "tiny_gguf_model", "Tiny.GGUF-Model"):
        assert resolve_choice(spelling, [str(site)]) == expected
    assert resolve_choice("default", [str(site)]) is None


def test_bad_choices_are_clear_errors(site, tmp_path):
    with pytest.raises(ModelChoiceError, match="two-models.*ships 2 models"):
        resolve_choice("two-models", [str(site)])
    with pytest.raises(
        ModelChoiceError, match="no file or installed package named 'nothing'.*tiny-gguf-model"
    ):
        resolve_choice("nothing", [str(site)])
    with pytest.raises(ModelChoiceError, match="is not a file"):
        resolve_choice(str(tmp_path / "missing.gguf"), [str(site)])
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelChoiceError, match="is not a GGUF file"):
        resolve_choice(str(text), [str(site)])


def test_speeds_are_kept_per_file_and_threads(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(GGUF)
    cache = SpeedCache(tmp_path / "data")
    assert cache.get(model, None) is None
    cache.put(model, None, 42.25, 96)
    entry = cache.get(model, None)
    assert entry is not None and entry["tokens_per_s"] == 42.2 and entry["tokens"] == 96
    assert SpeedCache(tmp_path / "data").get(model, None) == entry  # kept on disk
    assert cache.get(model, 2) is None  # another thread count is another figure
    model.write_bytes(GGUF + b"changed")
    assert cache.get(model, None) is None  # a changed file is measured again
