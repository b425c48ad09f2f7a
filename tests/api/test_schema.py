"""The OpenAPI schema: committed and current, valid, and its docs pages served from this server."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "openapi" / "schema.yaml"


def generated() -> str:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return out.getvalue()


def test_committed_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == generated(), (
        "openapi/schema.yaml is stale: run `python manage.py spectacular --file openapi/schema.yaml`"
    )


def test_every_api_operation_documents_auth_and_problem_bodies() -> None:
    schema = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["components"]["securitySchemes"]["tokenAuth"]["in"] == "header"
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            assert {"tokenAuth": []} in operation["security"], (path, method)
            for status in ("400", "401", "503"):
                content = operation["responses"][status]["content"]
                assert content["application/problem+json"]["schema"]["$ref"] == "#/components/schemas/Problem"


@pytest.mark.django_db(databases=[])
def test_schema_endpoint_yaml_and_json() -> None:
    client = APIClient()
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert yaml.safe_load(response.content)["openapi"].startswith("3.")
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200 and response.json()["info"]["title"] == "Switchyard API"


@pytest.mark.django_db(databases=[])
@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_answer_and_use_only_local_assets(url: str) -> None:
    response = APIClient().get(url)
    assert response.status_code == 200
    html = response.content.decode()
    refs = re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", html)
    assert refs, html[:500]
    for ref in refs:
        assert ref.startswith("/"), f"{url} references {ref}"
        if ref.startswith("/static/"):
            assert finders.find(ref.removeprefix("/static/")), ref
            asset = APIClient().get(ref)  # served by the process itself (WhiteNoise), not only by runserver
            assert asset.status_code == 200, ref
            asset.close()
    assert not re.search(r"https?://(?!localhost)", html.replace("http://www.w3.org", "")), (
        "an absolute URL in the page"
    )


@pytest.mark.django_db(databases=[])
@pytest.mark.parametrize(
    "params,headers,status", [({"format": "xml"}, {}, 404), ({}, {"HTTP_ACCEPT": "text/html"}, 406)]
)
def test_schema_errors_are_problem_json_bodies(params, headers, status) -> None:
    from tests.api.conftest import assert_problem

    response = APIClient().get("/api/schema/", params, **headers)
    assert_problem(response, status)  # parses the body as JSON: not YAML under a problem+json header
    assert response.content.lstrip().startswith(b"{")


def test_every_request_body_component_is_closed() -> None:
    """Every component a request body uses, directly or through another, says
    ``additionalProperties: false`` (the API refuses unknown fields); free-form values stay open."""
    schema = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))
    components = schema["components"]["schemas"]
    prefix = "#/components/schemas/"

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"][len(prefix) :]] if isinstance(node.get("$ref"), str) else []
            return own + [name for value in node.values() for name in refs(value)]
        if isinstance(node, list):
            return [name for value in node for name in refs(value)]
        return []

    pending = [
        name
        for operations in schema["paths"].values()
        for operation in operations.values()
        if isinstance(operation, dict)
        for name in refs(operation.get("requestBody", {}))
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(refs(components[name]))
    assert {"PostInput", "PatchedUserInput", "EventBatchInput", "EventInput", "RegistrationProfileInput"} <= seen
    for name in seen:
        assert components[name]["additionalProperties"] is False, name
    assert components["EventInput"]["properties"]["data"].get("additionalProperties", {}) == {}  # open
