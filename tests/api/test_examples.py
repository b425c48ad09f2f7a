"""The schema's examples work (issue 15, item 2).

On a fresh ``seed_demo`` (ids from 1), every operation of the committed schema is called on a live
test server (pytest-django's ``live_server``, a real HTTP server in this process) with its request
example and path parameter examples: reads first, then writes, then deletes. Every answer must be
2xx and valid against the committed schema (schemathesis validates status, headers and body), and
every JSON 2xx answer must have a recorded example in ``openapi/examples.json`` with the live
answer's shape. ``SWITCHYARD_RECORD_EXAMPLES=1`` writes the live answers there instead (then
regenerate the schema: ``manage.py spectacular --file openapi/schema.yaml``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from django.db import connection, connections
from django.test import override_settings

from core import aliases
from core.legacy.models import LegacyCustomer
from core.services.demo import DemoSizes, seed_demo
from openapi import examples
from routers.state import allow_legacy_writes

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "openapi" / "schema.yaml"
RECORD = os.environ.get("SWITCHYARD_RECORD_EXAMPLES") == "1"
METHODS = ("get", "post", "put", "patch", "delete")
ORDER = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}

#: Answers that describe the engines themselves: recorded on the real engines, their shape differs
#: on the embedded SQLite databases (no pool, other connection options), so there only the schema
#: validates them.
DESCRIBE_ENGINES = {"admin_databases_list", "admin_databases_slow_queries"}

pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True, databases="__all__")


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))
    found = [
        (path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items() if method in METHODS
    ]
    return sorted(found, key=lambda item: ORDER[item[1]])


def _shape(value: Any) -> Any:
    """The keys of every object, recursively (lists by their first item); values ignored."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


def _same_shape(recorded: Any, live: Any) -> bool:
    if isinstance(recorded, dict) and isinstance(live, dict):
        return recorded.keys() == live.keys() and all(_same_shape(recorded[k], live[k]) for k in recorded)
    if isinstance(recorded, list) and isinstance(live, list):
        return not recorded or not live or _same_shape(recorded[0], live[0])
    return not isinstance(recorded, (dict, list)) and not isinstance(live, (dict, list))


def _trimmed(value: Any, keep: int = 2) -> Any:
    """Long lists cut to their first items: an example to read, not a page to scroll."""
    if isinstance(value, dict):
        return {key: _trimmed(item, keep) for key, item in value.items()}
    if isinstance(value, list):
        return [_trimmed(item, keep) for item in value[:keep]]
    return value


def _normalised(body: Any, origin: str) -> Any:
    """The live server's origin in URLs becomes the README's development server."""
    return json.loads(json.dumps(body).replace(origin, examples.EXAMPLE_ORIGIN))


def test_every_operation_with_a_body_has_a_request_example() -> None:
    missing = [
        op["operationId"]
        for _, _, op in _operations()
        if "requestBody" in op
        and "seed_demo" not in next(iter(op["requestBody"]["content"].values())).get("examples", {})
    ]
    assert not missing, f"operations with a body but no request example: {missing}"


def test_error_examples_carry_only_their_status_fields() -> None:
    for path, method, op in _operations():
        for status, response in op["responses"].items():
            for content_type, media in (response.get("content") or {}).items():
                if not content_type.startswith("application/problem+json"):
                    continue
                body = media["examples"][status]["value"]
                assert body["status"] == int(status)
                extras = set(body) - {"type", "title", "status", "detail", "errors"}
                allowed = {"503": {"alias"}, "403": {"required_scope"}}.get(status, set())
                if op["operationId"] == "registrations_create" and status == "503":
                    allowed = {"alias", "step"}
                assert extras <= allowed, (method, path, status, extras)


def test_list_examples_show_this_apis_urls() -> None:
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    assert "api.example.org" not in text and "/accounts/" not in text


def _legacy_ids_from_one() -> None:
    """The legacy table is not Django's (tests do not flush it): empty it and restart its ids, as
    on a fresh database, so that the seeded customers are 1, 2, ..."""
    table = LegacyCustomer._meta.db_table
    with allow_legacy_writes():
        LegacyCustomer.objects.all().delete()
    legacy = connections[aliases.LEGACY]
    if legacy.vendor == "mysql":
        with legacy.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {legacy.ops.quote_name(table)} AUTO_INCREMENT = 1")
    elif legacy.vendor == "sqlite":
        with legacy.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'")
            if cursor.fetchone():
                cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])


@override_settings(METRICS_ENABLED=True, METRICS_TOKEN="")  # /metrics answers (it is a 404 when off)
def test_every_example_replays_on_a_live_server(live_server) -> None:
    _legacy_ids_from_one()
    token = seed_demo(sizes=DemoSizes(users=8, posts_per_user=3, events=60, days=10, customers=5, cache_entries=3))
    schema = schemathesis.openapi.from_path(str(SCHEMA_FILE))
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    recorded = {} if RECORD else examples.recorded_responses()
    failures: list[str] = []
    for path, method, op in _operations():
        op_id = op["operationId"]
        names = [p["name"] for p in op.get("parameters", []) if p.get("in") == "path"]
        url = live_server.url + path.format(**examples.path_values(op_id, names))
        body = examples.REQUESTS.get(op_id) if "requestBody" in op else None
        response = session.request(method.upper(), url, json=body, timeout=30)
        where = f"{method.upper()} {url.removeprefix(live_server.url)} ({op_id})"
        if not 200 <= response.status_code < 300:
            failures.append(f"{where}: {response.status_code} {response.text[:300]}")
            continue
        try:
            schema[path][method.upper()].validate_response(response)
        except Exception as exc:  # noqa: BLE001 - schemathesis raises a failure group naming every mismatch
            failures.append(f"{where}: not as the schema says: {exc}")
            continue
        if not response.content or "json" not in response.headers.get("Content-Type", ""):
            continue
        live = _normalised(response.json(), live_server.url)
        status = str(response.status_code)
        if RECORD:
            recorded.setdefault(op_id, {})[status] = _trimmed(live)
        elif status not in recorded.get(op_id, {}):
            failures.append(f"{where}: no recorded {status} example (SWITCHYARD_RECORD_EXAMPLES=1)")
        elif op_id in DESCRIBE_ENGINES and connection.vendor != "postgresql":
            continue
        elif not _same_shape(recorded[op_id][status], live):
            failures.append(f"{where}: the recorded {status} example no longer has the live answer's shape")
    if RECORD:
        examples.RESPONSES_FILE.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert not failures, "\n".join(failures)
