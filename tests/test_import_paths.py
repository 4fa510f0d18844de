"""One import path per error class: `reasonkit.errors`. No package re-exports one (they did:
`ProviderError` was importable through `reasonkit.providers`, `reasonkit.providers.base` and
`reasonkit.errors`), so a reader (and grep) finds each under one spelling. The public face
(`reasonkit/__init__.py`, for users) is checked in tests/test_public_api.py."""

from __future__ import annotations

import ast
from pathlib import Path

from reasonkit import errors

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "reasonkit", ROOT / "tests", ROOT / "bench"]
ERROR_NAMES = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, BaseException)}


def _files() -> list[Path]:
    return sorted(p for base in SOURCES for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) for every absolute `from module import name` in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.lineno, node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
        for alias in node.names
    ]


def _package_exports() -> dict[str, set[str]]:
    """Each reasonkit subpackage's `__all__`, read from its source."""
    out: dict[str, set[str]] = {}
    for init in (ROOT / "reasonkit").rglob("__init__.py"):
        package = _module_of(init)
        if package == "reasonkit":
            continue
        for node in ast.parse(init.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                out[package] = set(ast.literal_eval(node.value))
    return out


def test_error_classes_are_imported_from_errors_only() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: {name} from {module}"
        for path in _files()
        for line, module, name in _imports(path)
        if name in ERROR_NAMES and module.startswith("reasonkit") and module != "reasonkit.errors"
    ]
    assert wrong == []


def test_packages_do_not_re_export_error_classes() -> None:
    assert {
        p: sorted(names & ERROR_NAMES) for p, names in _package_exports().items() if names & ERROR_NAMES
    } == {}


def _declared_all() -> dict[str, set[str]]:
    """`__all__` of every reasonkit module that declares one, read from its source."""
    out: dict[str, set[str]] = {}
    for path in (ROOT / "reasonkit").rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                out[_module_of(path)] = set(ast.literal_eval(node.value))
    return out


def test_names_come_from_a_module_that_exports_them() -> None:
    """A module with `__all__` is imported only for what it lists: a name it merely imports (a
    re-export shim, e.g. `RunKind` through `reasonkit.runs`) comes from where it is defined.
    Private names (`_x`) are not checked here; submodules are not names."""
    declared = _declared_all()
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: {name} from {module}"
        for path in _files()
        for line, module, name in _imports(path)
        if module in declared
        and name not in declared[module]
        and not name.startswith("_")
        and f"{module}.{name}" not in declared
        and not (ROOT / module.replace(".", "/") / f"{name}.py").exists()
    ]
    assert wrong == []


def _defined(path: Path) -> set[str]:
    """Names a module defines at top level (not the ones it imports)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                named = target.elts if isinstance(target, ast.Tuple) else [target]
                out.update(t.id for t in named if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
    return out


def test_a_module_exports_only_what_it_defines() -> None:
    """Only a package's `__init__` gathers names from elsewhere; a module's `__all__` listing an
    imported name is a second path to it (engine/runner.py listed `InputError` and a
    `coerce_inputs` kept for a module that no longer existed)."""
    wrong = {}
    for module, names in _declared_all().items():
        path = ROOT / (module.replace(".", "/") + ".py")
        if path.exists():  # not a package
            extra = names - _defined(path)
            if extra:
                wrong[module] = sorted(extra)
    assert wrong == {}
