"""What callers read in the committed schema (issue 15, items 2, 3 and 5): tags in reading order,
each described; every property described; names that read well in generated clients; the
headers of a 201 and of a write."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi" / "schema.yaml").read_text(encoding="utf-8"))
OPERATIONS = [
    (path, method, op)
    for path, ops in SCHEMA["paths"].items()
    for method, op in ops.items()
    if method in ("get", "post", "put", "patch", "delete")
]


def test_tags_in_reading_order_each_described() -> None:
    names = [tag["name"] for tag in SCHEMA["tags"]]
    assert names[:7] == ["users", "posts", "analytics", "legacy", "aggregates", "registrations", "admin"]
    assert all(tag.get("description") for tag in SCHEMA["tags"])
    used = {tag for _, _, op in OPERATIONS for tag in op.get("tags", [])}
    assert used <= set(names), used - set(names)


def test_every_property_is_described() -> None:
    missing = [
        f"{name}.{prop}"
        for name, schema in SCHEMA["components"]["schemas"].items()
        for prop, body in (schema.get("properties") or {}).items()
        if not body.get("description")
    ]
    assert not missing, missing


def test_component_and_enum_names_read_well() -> None:
    components = SCHEMA["components"]["schemas"]
    assert not [name for name in components if name.endswith("Request")]
    assert {"PostInput", "PatchedPostInput", "UserInput", "PatchedUserInput", "EventInput"} <= set(components)

    def enums(node):  # type: ignore[no-untyped-def]
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list):
                yield node
            for value in node.values():
                yield from enums(value)
        elif isinstance(node, list):
            for value in node:
                yield from enums(value)

    unnamed = [
        node["enum"]
        for node in enums(SCHEMA)
        if all(isinstance(v, str) for v in node["enum"])
        and not all(v.isidentifier() for v in node["enum"])
        and "x-enum-varnames" not in node
    ]
    assert not unnamed, unnamed
    ordering = next(node for node in enums(SCHEMA) if "-id" in node["enum"])
    assert dict(zip(ordering["enum"], ordering["x-enum-varnames"]))["-id"] == "id_desc"


def test_every_201_documents_location_and_writes_document_the_pin() -> None:
    for path, method, op in OPERATIONS:
        for status, response in op["responses"].items():
            headers = response.get("headers", {})
            if status == "201":
                assert headers["Location"]["required"], (method, path)
            if method != "get" and status.startswith("2"):
                assert settings.REPLICA_PIN_HEADER in headers, (method, path, status)
