"""The API's write operations, found from the URL conf, with a body and the objects each accepts:
the tests that send every write a body use them, so that a new operation is in those tests
without being named there."""

from __future__ import annotations

from typing import Any

from drf_spectacular.generators import EndpointEnumerator

from tests.factories import make_customer, make_post, make_user

BODY_METHODS = ("POST", "PUT", "PATCH")


def write_operations() -> list[tuple[str, str]]:
    """Every (method, path template) of the API that takes a body, from the URL conf: a new
    operation is in the tests that use this without being named there. The legacy writes are
    among them whatever ``LEGACY_ALLOW_WRITES`` says (the setting only hides them from the schema,
    and the view answers 405 while it is off); no setting is changed here, since the legacy views'
    module reads it when first imported."""
    endpoints = EndpointEnumerator().get_api_endpoints()
    return [(method, path) for path, _regex, method, _view in endpoints if method in BODY_METHODS]


def valid_body(path: str, n: int) -> dict[str, Any]:
    """A body each operation under ``path`` accepts (given the objects of :func:`objects`)."""
    collection = path.split("{")[0]
    bodies: dict[str, dict[str, Any]] = {
        "/api/v1/posts/": {"title": "t", "content": "c", "author_id": "{author}"},
        "/api/v1/users/": {"username": f"strict{n}", "email": f"strict{n}@example.com"},
        "/api/v1/analytics/events/": {"event_type": "view", "data": {"free": {"form": 1}}},
        "/api/v1/analytics/events/batch/": {"events": [{"event_type": "view"}, {"event_type": "click"}]},
        "/api/v1/registrations/": {"username": f"reg{n}", "email": f"reg{n}@example.com", "profile": {"bio": "b"}},
        "/api/v1/legacy/customers/": {"customer_name": "C", "customer_email": f"c{n}@example.com"},
    }
    assert collection in bodies, f"no valid body known for {path}: add one here"
    return dict(bodies[collection])


def objects() -> dict[str, int]:
    author = make_user()
    return {
        "author": author.pk,
        "/api/v1/posts/": make_post(author=author).pk,
        "/api/v1/users/": make_user().pk,
        "/api/v1/legacy/customers/": make_customer().pk,
    }


def concrete(path: str, ids: dict[str, int]) -> str:
    if "{" not in path:
        return path
    collection, rest = path.split("{", 1)
    return collection + str(ids[collection]) + rest.split("}", 1)[1]


def fill(body: dict[str, Any], ids: dict[str, int]) -> dict[str, Any]:
    return {k: ids["author"] if v == "{author}" else v for k, v in body.items()}
