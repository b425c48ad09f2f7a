"""Examples in the OpenAPI schema (issue 15, item 2), added by ``openapi.hooks.add_examples``.

- ``REQUESTS``: one request body per operation that takes one. Each succeeds against the data of
  a fresh ``manage.py seed_demo`` (ids from 1), in the order ``tests/api/test_examples.py`` sends
  them (every read, then the writes, then the deletes): try them in Swagger UI as they are.
- ``PATH_PARAMETERS``: the ids the examples use (the deletes use ids nothing else reads).
- Responses: ``openapi/examples.json``, answers of a live test server to exactly these requests
  on seeded data, recorded by ``SWITCHYARD_RECORD_EXAMPLES=1 scripts/test tests/api/test_examples.py``
  (then regenerate the schema). The test replays every request in every run and validates the live
  answer against the schema; the recorded example must have the live answer's shape.
- Errors: one Problem Details example per status, with only the fields that status carries
  (``alias`` on a 503, ``required_scope`` on a 403, ``step`` on a registration's failures).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Where list URLs in examples point: the development server of the README.
EXAMPLE_ORIGIN = "http://127.0.0.1:8000"
RESPONSES_FILE = Path(__file__).with_name("examples.json")

REQUESTS: dict[str, dict[str, Any]] = {
    "users_create": {
        "username": "ada_lovelace",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
    },
    "users_update": {
        "username": "demo_000001",
        "email": "demo_000001@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
    },
    "users_partial_update": {"first_name": "Grace"},
    "posts_create": {"title": "Hello from Swagger UI", "content": "My first post.", "author_id": 1},
    "posts_update": {"title": "A better title", "content": "Rewritten from the first word.", "author_id": 1},
    "posts_partial_update": {"title": "An even better title"},
    "analytics_events_create": {
        "event_type": "page_view",
        "user_id": 1,
        "session_id": "sess-42",
        "timestamp": "2026-11-25T10:00:00Z",
        "data": {"path": "/pricing"},
    },
    "analytics_events_batch_create": {
        "events": [
            {"event_type": "page_view", "user_id": 1, "session_id": "sess-42", "data": {"path": "/"}},
            {"event_type": "click", "user_id": 1, "session_id": "sess-42", "data": {"button": "signup"}},
        ]
    },
    "registrations_create": {
        "username": "ada",
        "email": "ada.registered@example.com",
        "first_name": "Ada",
        "profile": {"bio": "Mathematician", "avatar_url": "https://example.com/ada.png"},
    },
    # Legacy writes are documented only when LEGACY_ALLOW_WRITES is on.
    "legacy_customers_create": {"customer_name": "Ada Lovelace", "customer_email": "ada@example.com"},
    "legacy_customers_update": {"customer_name": "Ada King", "customer_email": "ada.king@example.com"},
    "legacy_customers_partial_update": {"customer_name": "Ada King"},
}

#: operationId -> {path parameter: value}; any other path parameter is 1.
PATH_PARAMETERS: dict[str, dict[str, int]] = {
    "posts_destroy": {"id": 2},
    "users_destroy": {"id": 3},
    "legacy_customers_destroy": {"customer_id": 3},
}
DEFAULT_PATH_VALUE = 1


def path_values(operation_id: str, names: list[str]) -> dict[str, int]:
    chosen = PATH_PARAMETERS.get(operation_id, {})
    return {name: chosen.get(name, DEFAULT_PATH_VALUE) for name in names}


def recorded_responses() -> dict[str, dict[str, Any]]:
    """operationId -> {status: body} of the recorded answers (empty before the first recording)."""
    if not RESPONSES_FILE.exists():
        return {}
    return json.loads(RESPONSES_FILE.read_text(encoding="utf-8"))


def problem_example(status: int, operation_id: str, operation: dict[str, Any]) -> dict[str, Any]:
    """A Problem Details body for ``status`` of this operation, with only the fields it carries."""
    from api.problems import problem

    resource = operation_id.split("_")[0]
    body_fields = list(REQUESTS.get(operation_id, {}))
    query = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
    registration = operation_id == "registrations_create"
    if status == 400:
        field = body_fields[0] if body_fields else (query[0] if query else None)
        if field is None:
            return problem(
                400,
                "The request is malformed.",
                errors=[{"field": None, "code": "parse_error", "message": "JSON parse error."}],
            )
        code, message = (
            ("blank", "This field may not be blank.") if body_fields else ("invalid", "Select a valid choice.")
        )
        return problem(
            400, "One or more fields are invalid.", errors=[{"field": field, "code": code, "message": message}]
        )
    if status == 401:
        return problem(401, "Authentication credentials were not provided.")
    if status == 403:
        scopes = operation.get("x-required-scopes") or ["read"]
        return problem(403, f"This token lacks the scope `{scopes[-1]}`.", required_scope=scopes[-1])
    if status == 404:
        return problem(404, "No object with this id exists." if "{" in operation.get("x-path", "") else "Invalid page.")
    if status == 406:
        return problem(406, "Could not satisfy the request Accept header.")
    if status == 409:
        if registration:
            return problem(
                409,
                "A user with this email already exists.",
                errors=[{"field": "email", "code": "unique", "message": "A user with this email already exists."}],
            )
        return problem(
            409,
            "a request with Idempotency-Key 'k-1' is still being processed; retry shortly to get its answer",
            slug="idempotency-key-in-progress",
            title="Request in progress",
            errors=[
                {"field": "Idempotency-Key", "code": "in_progress", "message": "the first request has not answered yet"}
            ],
        )
    if status == 412:
        return problem(412, "The resource changed since the version named by If-Match; read it again and retry.")
    if status == 413:
        return problem(413, "The request body is larger than 1048576 bytes.")
    if status == 415:
        return problem(415, 'Unsupported media type "text/plain" in request.')
    if status == 422:
        return problem(
            422,
            "Idempotency-Key 'k-1' was first used with another request body (or path); use a new key for a new request",
            slug="idempotency-key-reused",
            title="Idempotency-Key reused with a different request",
            errors=[
                {"field": "Idempotency-Key", "code": "mismatch", "message": "this key belongs to a different request"}
            ],
        )
    if status == 428:
        return problem(428, "This write needs an If-Match header naming the ETag of the version it changes.")
    if status == 429:
        return problem(429, "Request was throttled. Expected available in 12 seconds.")
    if status == 503:
        if registration:
            return problem(
                503,
                "users_db is unavailable; nothing of the registration was kept.",
                alias="users_db",
                step="create_user",
            )
        alias = {"posts": "default", "analytics": "analytics_db", "legacy": "legacy_db"}.get(resource, "users_db")
        return problem(503, f"The database {alias} is unavailable.", alias=alias)
    return problem(status, "See the description of this answer.")
