"""The house plan, checked from the source: layers point one way, no import circles, modules of one
concept stay small. (docs/architecture.md draws the same picture.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reasonkit"

# Lower numbers are lower layers; a module may import its own layer and the ones below it.
LAYERS: dict[str, int] = {
    "reasonkit": 0,  # the package's __init__ (version only)
    "reasonkit.errors": 0,
    "reasonkit.data": 0,  # the shipped price table
    "reasonkit.tomlfile": 0,  # reading a TOML file with one clear error
    "reasonkit.provider_kinds": 0,  # the provider kind registry: data only, read by config and up
    "reasonkit.safetext": 0,  # outside text made safe for logs and terminals
    "reasonkit.jsonguard": 0,  # JSON from outside with a bounded nesting depth
    "reasonkit.principal": 0,  # who a request comes from and which runs it may see
    "reasonkit.config": 1,
    "reasonkit.observability": 1,
    "reasonkit.protocol": 2,
    "reasonkit.providers": 3,
    "reasonkit.engine": 4,
    "reasonkit.store": 5,
    "reasonkit.presentation": 6,  # one view of a run and one formatting module, for every surface
    "reasonkit.render": 6,
    "reasonkit.runs": 6,
    "reasonkit.run_notices": 6,  # notices and small-model caps a run's provider brings (apart from runs)
    "reasonkit.run_request": 6,  # RunService.run(request, hooks): the one path of a run, for every shell
    "reasonkit.live_runs": 6,  # a run in progress (apart from runs: no engine import at server start)
    "reasonkit.viewer": 6,  # run reports: terminal text and HTML (reasonkit/viewer)
    "reasonkit.server": 7,
    "reasonkit.eval": 7,  # rk eval: runs items through the run service (never server or cli)
    "reasonkit.cli": 8,
    "reasonkit._entry": 9,
}
MAX_LINES = 420  # "about 400"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = max((name for name in LAYERS if module == name or module.startswith(name + ".")), key=len)
    return LAYERS[best]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """reasonkit modules imported at run time (top level or inside functions), not the
    `if TYPE_CHECKING:` ones."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("reasonkit"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reasonkit"):
            found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            # `from reasonkit.x import y` may name a module y or a name in x: keep what exists.
            target = imported if imported in modules else imported.rsplit(".", 1)[0]
            if target in modules and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def test_the_layer_table_covers_every_module():
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        assert any(module == n or module.startswith(n + ".") for n in LAYERS), module


def test_nothing_lower_imports_anything_higher():
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_import_circles():
    graph = _graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            # A package's __init__ re-exporting its own submodules is not a circle.
            if target.startswith(node + "."):
                continue
            if state.get(target) == 1:
                circles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert circles == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path: Path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by concept"


def test_every_error_derives_from_the_root():
    from reasonkit.errors import ReasonKitError

    raised: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                raised.append(f"{_module_name(path)}.{node.name}")
    import importlib

    for qualified in raised:
        module, name = qualified.rsplit(".", 1)
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, ReasonKitError), qualified


# Inside reasonkit.server, its rooms in order: a room may import its own and the ones below it.
SERVER_ROOMS: dict[str, int] = {
    "reasonkit.server": 0,  # the package's __init__ (docstring only)
    "reasonkit.server.capacity": 1,  # run slots and rate limits, per process and through Redis
    "reasonkit.server.http": 2,  # Starlette apps, the gate, connection hygiene, /health, run pages
    "reasonkit.server.mcp": 3,  # the SDK server, its handlers, schemas, process state, reload
    "reasonkit.server.lifecycle": 4,  # serve (stdio, HTTP, drain) and worker processes
}


def _room(module: str) -> int:
    best = max((name for name in SERVER_ROOMS if module == name or module.startswith(name + ".")), key=len)
    return SERVER_ROOMS[best]


def test_the_server_rooms_cover_every_server_module():
    for path in (PACKAGE / "server").rglob("*.py"):
        module = _module_name(path)
        assert module == "reasonkit.server" or _room(module) > 0, f"{module}: put it in a room"


def test_no_server_room_imports_a_higher_one():
    upward = [
        f"{module} (room {_room(module)}) imports {target} (room {_room(target)})"
        for module, targets in _graph().items()
        if module.startswith("reasonkit.server")
        for target in targets
        if target.startswith("reasonkit.server") and _room(target) > _room(module)
    ]
    assert upward == []


MAX_STATEMENTS = 60  # per function: a longer one holds several concerns (split it, as the HTTP gate was)
# Functions still above it, each to be split; an entry leaves the list when its function shrinks.
LONG_FUNCTIONS: set[str] = set()  # none left: a function that must stay long is named here, with why


def _statements(function: ast.AST) -> int:
    """Statements in a function's body, nested blocks included; a nested function or class counts
    as one (its own body is measured on its own)."""
    count = 0
    for child in ast.iter_child_nodes(function):
        if isinstance(child, ast.stmt):
            count += 1
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            count += _statements(child)
    return count


def _functions(node: ast.AST, prefix: str):
    """(qualified name, node) of every function under `node`, methods and nested ones included."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}.{child.name}"
            if not isinstance(child, ast.ClassDef):
                yield name, child
            yield from _functions(child, name)
        else:
            yield from _functions(child, prefix)


def _function_sizes() -> dict[str, int]:
    return {
        name: _statements(node)
        for path in PACKAGE.rglob("*.py")
        for name, node in _functions(ast.parse(path.read_text(encoding="utf-8")), _module_name(path))
    }


def test_functions_stay_short():
    sizes = _function_sizes()
    too_long = {name: n for name, n in sizes.items() if n > MAX_STATEMENTS and name not in LONG_FUNCTIONS}
    assert too_long == {}, f"split these by concern (at most {MAX_STATEMENTS} statements each)"
    shrunk = {name for name in LONG_FUNCTIONS if sizes.get(name, 0) <= MAX_STATEMENTS}
    assert shrunk == set(), "these are short now: take them off LONG_FUNCTIONS"
