"""docs/api.md stays true to the committed schema (issue 15, item 1): its operations table lists
every operation of openapi/schema.yaml with exactly its scopes and statuses, and every operation,
path and status the page names elsewhere exists in the schema."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
SCHEMA = yaml.safe_load((ROOT / "openapi" / "schema.yaml").read_text(encoding="utf-8"))
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
OPERATIONS = {
    (method.upper(), path): op
    for path, ops in SCHEMA["paths"].items()
    for method, op in ops.items()
    if method.upper() in METHODS
}
ALL_STATUSES = {status for op in OPERATIONS.values() for status in op["responses"]}
#: Statuses the page names that are no operation's answer in the schema: the trailing-slash
#: redirects, the 405 of a method a path does not have, and the 500 that bad input never gets.
OUTSIDE_SCHEMA = {"301", "308", "405", "500"}
#: Paths the page names that are not API operations: the schema and docs pages, the admin.
OTHER_PATHS = {"/api/schema/", "/api/docs/", "/api/redoc/", "/admin/", "/api/v1/"}

ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/\S*)` \| ([^|]*) \| [^|]* \| ([^|]*) \|$", re.MULTILINE)
NAMED_OPERATION = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)")
NAMED_PATH = re.compile(r"`(/(?:api|health|metrics|admin)[^`\s?]*)")
NAMED_STATUS = re.compile(r"(?:`|\b(?:a|an|the|with|gives a|is a)\s)([1-5]\d\d)\b")


def _table() -> dict[tuple[str, str], tuple[list[str], list[str], list[str]]]:
    """(method, path) -> (the scopes all needed, the write scopes that also allow it, statuses):
    the scopes column reads ``a, b`` or ``read or posts:write``."""
    rows = {}
    for method, path, scopes, statuses in ROW.findall(DOC):
        required, *implied = scopes.split(" or ")
        named_scopes = [s.strip() for s in required.split(",") if s.strip() and s.strip() != "none"]
        statuses_named = [s.strip() for s in statuses.split(",") if s.strip()]
        rows[(method, path)] = (named_scopes, [s.strip() for s in implied], statuses_named)
    return rows


def test_the_table_lists_every_operation_with_its_scopes_and_statuses() -> None:
    rows = _table()
    assert set(rows) == set(OPERATIONS), {
        "in the schema, not on the page": sorted(set(OPERATIONS) - set(rows)),
        "on the page, not in the schema": sorted(set(rows) - set(OPERATIONS)),
    }
    for key, (scopes, implied, statuses) in rows.items():
        op = OPERATIONS[key]
        assert scopes == op.get("x-required-scopes", []), (key, scopes)
        assert implied == op.get("x-read-implied-by", []), (key, implied)
        assert sorted(statuses, key=int) == sorted(op["responses"], key=int), (key, statuses)


def test_every_operation_named_exists() -> None:
    named = set(NAMED_OPERATION.findall(DOC))
    assert named, "the page names no operation"
    assert not named - set(OPERATIONS), sorted(named - set(OPERATIONS))


def test_every_path_named_exists() -> None:
    named = set(NAMED_PATH.findall(DOC))
    known = set(SCHEMA["paths"]) | OTHER_PATHS
    # A concrete example path (`/api/v1/posts/42/`) matches a templated one.
    templates = [re.compile("^" + re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(path)) + "$") for path in known]
    unknown = sorted(path for path in named if not any(t.match(path) for t in templates))
    assert not unknown, unknown


def test_every_status_named_exists() -> None:
    named = set(NAMED_STATUS.findall(DOC))
    assert {"201", "304", "412", "428"} <= named
    unknown = sorted(named - ALL_STATUSES - OUTSIDE_SCHEMA)
    assert not unknown, unknown


def test_the_readme_links_here_not_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/api.md" in readme
    assert "../shared/" not in readme
