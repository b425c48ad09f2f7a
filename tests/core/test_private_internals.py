"""No private internals of other libraries (issue 12, item 3): the project's code is scanned.

What fails (names starting with one underscore, dunders aside):
- importing a private module or name of another library (``import psycopg._cmodule``,
  ``from psycopg import _cmodule``);
- reading a private attribute the project does not define itself (``pool._max_workers``,
  ``request._read_started``, ``getattr(wrapper, "_connection_pools")``): a private name that no
  module of ours defines (as ``self._x = ...``, a ``def``/``class``, a class or module variable)
  belongs to another library;
- setting a private attribute on anything but ``self``/``cls`` (``raw._switchyard_binder = ...``,
  ``setattr(obj, "_x", ...)``): an attribute set on another library's object (ours are set by
  their own methods).

Allowed: the underscore names libraries document as public API: Django's ``Model._meta``,
``Model._state``, ``_default_manager``/``_base_manager``; ``os._exit``; namedtuple's ``_asdict``,
``_replace``, ``_fields``, ``_make``; enum's sunder names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("api", "core", "routers", "bench", "scripts", "tests", "clients", "gunicorn.conf.py", "manage.py")
PROJECT_PACKAGES = {"api", "core", "routers", "bench", "scripts", "tests", "clients"}
DOCUMENTED = {
    "_meta",
    "_state",
    "_default_manager",
    "_base_manager",  # Django's Model API
    "_exit",  # os._exit
    "_asdict",
    "_replace",
    "_fields",
    "_make",
    "_field_defaults",  # collections.namedtuple
    "_name_",
    "_value_",
    "_missing_",
    "_generate_next_value_",  # enum
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in DOCUMENTED


def _is_self(node: ast.AST) -> bool:
    if isinstance(node, ast.Name) and node.id in ("self", "cls"):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def defined_names(trees: list[ast.AST]) -> set[str]:
    """Every private name the project defines: functions, classes, module/class variables and the
    attributes its methods set on ``self``/``cls`` (names set only on other objects do not count)."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _is_self(node.value):
                names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
    return {name for name in names if _private(name)}


def violations(tree: ast.AST, ours: set[str]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, *rest = alias.name.split(".")
                if top not in PROJECT_PACKAGES and any(_private(part) for part in [top, *rest]):
                    found.append((node.lineno, f"import of a private module: {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            parts = node.module.split(".") + [alias.name for alias in node.names]
            if top not in PROJECT_PACKAGES and any(_private(part) for part in parts):
                found.append((node.lineno, f"import of a private name: from {node.module} import ..."))
        elif isinstance(node, ast.Attribute) and _private(node.attr) and not _is_self(node.value):
            if node.attr in ours:
                continue  # one of ours (a helper of the module that defines the class may set it)
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                found.append((node.lineno, f"private attribute set on another object: {ast.unparse(node)}"))
            else:
                found.append((node.lineno, f"private attribute of another library: {ast.unparse(node)}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
        ):
            name = node.args[1]
            if (
                isinstance(name, ast.Constant)
                and isinstance(name.value, str)
                and _private(name.value)
                and name.value not in ours
            ):
                if node.func.id in ("setattr", "delattr") and not _is_self(node.args[0]):
                    found.append((node.lineno, f"private attribute set on another object: {ast.unparse(node)}"))
                else:
                    found.append((node.lineno, f"private attribute of another library: {ast.unparse(node)}"))
    return found


def project_files() -> list[Path]:
    files: list[Path] = []
    for entry in SCANNED:
        path = ROOT / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def test_no_private_internals_of_other_libraries() -> None:
    trees = {path: ast.parse(path.read_text(), str(path)) for path in project_files()}
    ours = defined_names(list(trees.values()))
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path, tree in trees.items()
        for line, what in violations(tree, ours)
    ]
    assert not found, "private internals of other libraries:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "import psycopg._cmodule",
        "from psycopg import _cmodule",
        "from psycopg._cmodule import _psycopg",
        "workers = pool._max_workers",
        "started = getattr(request, '_read_started', True)",
        "pools = type(wrapper)._connection_pools",
        "raw._switchyard_binder = raw.cursor()",
        "setattr(connection, '_switchyard_returned_at', 1.0)",
        "request._messages = object()",
    ],
)
def test_the_scan_finds_each_kind(source: str) -> None:
    assert violations(ast.parse(source), ours=set()), source


@pytest.mark.parametrize(
    "source",
    [
        "opts = model._meta",
        "adding = instance._state.adding",
        "self._cache = {}",
        "from core import _helpers",
        "value = point._asdict()",
        "super()._setup()",
    ],
)
def test_the_scan_allows_documented_and_own_names(source: str) -> None:
    assert not violations(ast.parse(source), ours=set()), source


def test_a_name_the_project_defines_is_its_own() -> None:
    tree = ast.parse(
        "class Part:\n    def __init__(self):\n        self._raw = None\n\nx = part._raw\ny = part._other\n"
    )
    assert [line for line, _ in violations(tree, defined_names([tree]))] == [6]
