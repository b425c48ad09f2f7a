"""Layout rules of issue 12 that a scan can hold.

The ``default`` database alias is named through ``django.db.DEFAULT_DB_ALIAS`` or
``core.aliases.DEFAULT``, never as a bare string where code picks a database: ``connections["default"]``,
``.using("default")``, a ``using=``/``database=``/``alias=``/``db=`` argument or parameter default,
or a comparison with an alias. (Settings, the database configuration and migrations build the
``DATABASES`` dict itself; OpenAPI examples are data.)
"""

from __future__ import annotations

import ast

import pytest

from tests.core.test_private_internals import ROOT

SCANNED = ("api", "core", "routers")
EXEMPT = ("core/settings.py", "core/db_config.py", "core/aliases.py")
ALIAS_NAMES = {"using", "database", "alias", "db"}


def _is_default(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value == "default"


def bare_defaults(tree: ast.AST) -> list[int]:
    found: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "connections":
            if _is_default(node.slice):
                found.append(node.lineno)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "using" and any(map(_is_default, node.args)):
                found.append(node.lineno)
            found += [node.lineno for kw in node.keywords if kw.arg in ALIAS_NAMES and _is_default(kw.value)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args + node.args.kwonlyargs
            defaults = (
                [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults + node.args.kw_defaults
            )
            found += [
                node.lineno
                for arg, default in zip(args, defaults, strict=True)
                if arg.arg in ALIAS_NAMES and _is_default(default)
            ]
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            operands = [node.left, *node.comparators]
            names = [o.id if isinstance(o, ast.Name) else getattr(o, "attr", "") for o in operands]
            if any(map(_is_default, operands)) and any(n in ALIAS_NAMES or n.endswith("alias") for n in names):
                found.append(node.lineno)
    return found


def test_the_default_alias_is_never_a_bare_string() -> None:
    found = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if relative in EXEMPT or "/migrations/" in relative:
                continue
            found += [f"{relative}:{line}" for line in bare_defaults(ast.parse(path.read_text()))]
    assert not found, "name the default alias via DEFAULT_DB_ALIAS or core.aliases.DEFAULT:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        'connections["default"].cursor()',
        'User.objects.using("default")',
        'call_command("migrate", database="default")',
        'def f(sender, using="default"): pass',
        'ok = alias == "default"',
    ],
)
def test_the_scan_finds_each_form(source: str) -> None:
    assert bare_defaults(ast.parse(source)), source


def test_the_scan_leaves_other_defaults_alone() -> None:
    assert not bare_defaults(ast.parse('x = {"default": 1}\nopts = field.get("default")\nf(default="x")'))
