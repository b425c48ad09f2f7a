"""Layout rules of issue 12 that a scan can hold.

Only ``core/services/`` imports the models of more than one app: every other module of the project
(api, core, routers, bench, scripts, clients, manage.py, gunicorn.conf.py; tests aside, they set up
rows of every app) reads and writes other apps' data through their selectors and services. The apps
are those of ``INSTALLED_APPS`` that are the project's own and have models, so a new app is covered
without editing this file. A module "imports an app's models" with ``import core.x.models``,
``from core.x.models import ...``, ``from core.x import models`` or ``apps.get_model("x", ...)``.

There is one users-by-id selector (``core.users.selectors.usernames_by_id``): no module outside
``core/users/`` reads users by a set of ids itself (``User.objects...in_bulk`` or
``.filter(pk__in=...)``/``id__in``).

The ``default`` database alias is named through ``django.db.DEFAULT_DB_ALIAS`` or
``core.aliases.DEFAULT``, never as a bare string where code picks a database: ``connections["default"]``,
``.using("default")``, a ``using=``/``database=``/``alias=``/``db=`` argument or parameter default,
or a comparison with an alias. (Settings, the database configuration and migrations build the
``DATABASES`` dict itself; OpenAPI examples are data.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps

from tests.core.test_private_internals import PROJECT_PACKAGES, ROOT, project_files

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


# --- only core/services/ imports the models of more than one app ---------------------------------


def project_apps() -> dict[str, str]:
    """``{models module: app}`` of every installed app of ours that has models (``core``,
    ``core.users``, ``core.blog``, ...), from the app registry, i.e. ``INSTALLED_APPS``."""
    found = {}
    for config in apps.get_app_configs():
        if config.name.split(".")[0] in PROJECT_PACKAGES and config.models_module is not None:
            found[config.models_module.__name__] = config.name
    return found


def test_the_app_list_covers_every_models_module() -> None:
    modules = project_apps()
    on_disk = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for package in PROJECT_PACKAGES
        for path in (ROOT / package).rglob("models.py")
    }
    assert on_disk <= set(modules), f"models modules of no installed app: {sorted(on_disk - set(modules))}"
    assert {"core", "core.users", "core.blog", "core.analytics", "core.legacy", "core.cache", "core.tokens"} <= set(
        modules.values()
    )


def models_imported(tree: ast.AST, modules: dict[str, str]) -> dict[str, int]:
    """``{app: first line}`` of every app whose models the module imports (or looks up)."""
    by_label = {name.rsplit(".", 1)[-1]: name for name in modules.values()}
    found: dict[str, int] = {}

    def note(module: str, line: int) -> None:
        for models_module, app in modules.items():
            if module == models_module or module.startswith(models_module + "."):
                found.setdefault(app, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                note(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            note(node.module, node.lineno)
            for alias in node.names:
                note(f"{node.module}.{alias.name}", node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_model"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            label = node.args[0].value.split(".")[0]
            if label in by_label:
                found.setdefault(by_label[label], node.lineno)
    return found


def _outside_services(path: Path) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    return not relative.startswith(("core/services/", "tests/")) and "/migrations/" not in relative


def test_only_core_services_imports_the_models_of_more_than_one_app() -> None:
    modules = project_apps()
    found = []
    for path in project_files():
        if not _outside_services(path):
            continue
        imported = models_imported(ast.parse(path.read_text(), str(path)), modules)
        if len(imported) > 1:
            where = ", ".join(f"{app} (line {line})" for app, line in sorted(imported.items()))
            found.append(f"{path.relative_to(ROOT)}: {where}")
    assert not found, (
        "only core/services/ may import the models of more than one app; go through the apps' "
        "selectors and services (or move the use case to core/services/):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "source",
    [
        "from core.users.models import User\nfrom core.blog.models import Post",
        "import core.users.models\nimport core.analytics.models as events",
        "from core.cache import models\nfrom core.legacy.models import LegacyCustomer",
        "from core.tokens import models as tokens\nfrom core.models import SagaRun",
        "def f():\n    from core.users.models import User\n    return apps.get_model('blog', 'Post')",
        "from core.users.models import User\nPost = apps.get_model('blog.Post')",
    ],
)
def test_the_models_scan_finds_each_form(source: str) -> None:
    assert len(models_imported(ast.parse(source), project_apps())) == 2, source


def test_the_models_scan_counts_one_app_once_and_leaves_selectors_alone() -> None:
    source = (
        "from core.users.models import User\nfrom core.users import models\n"
        "from core.blog.selectors import post_list\nfrom core.services import stats\nfrom django.db import models"
    )
    assert set(models_imported(ast.parse(source), project_apps())) == {"core.users"}


# --- one users-by-id selector ----------------------------------------------------------------------


def users_by_id_queries(tree: ast.AST) -> list[int]:
    """Lines that read users by a set of ids: ``User.objects....in_bulk(...)`` or
    ``User.objects....filter(pk__in=...)`` (``id__in`` too)."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        chain = ast.unparse(node.func)
        if not chain.startswith("User.objects."):
            continue
        if node.func.attr == "in_bulk" or (
            node.func.attr in ("filter", "exclude") and any(kw.arg in ("pk__in", "id__in") for kw in node.keywords)
        ):
            found.append(node.lineno)
    return found


def test_one_users_by_id_selector() -> None:
    found = []
    for path in project_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("core/users/", "tests/")):
            continue
        found += [f"{relative}:{line}" for line in users_by_id_queries(ast.parse(path.read_text(), str(path)))]
    assert not found, "read users by id through core.users.selectors.usernames_by_id:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "User.objects.only('id', 'username').in_bulk(ids)",
        "User.objects.using(alias).filter(pk__in=ids).values_list('id', 'username')",
        "User.objects.primary().filter(pk__in=wanted)",
        "User.objects.filter(id__in=ids)",
    ],
)
def test_the_users_by_id_scan_finds_each_form(source: str) -> None:
    assert users_by_id_queries(ast.parse(source)), source
