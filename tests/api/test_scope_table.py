"""Who may do what, as one table: every operation of the committed schema against every kind of
token, with the status each must get (docs/security.md).

An operation added to the API without its row here fails :func:`test_every_operation_has_a_row`;
a row whose scopes differ from what the schema states fails too. The walk sends each request for
real (fresh objects per cell, so deletes and moves do not disturb the next cell).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from core.tokens import scopes as S
from core.tokens.services import token_revoke
from tests.factories import api_client, make_account, make_customer, make_event, make_post, make_user

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "openapi" / "schema.yaml"
_seq = itertools.count(1)


@dataclass(frozen=True)
class Row:
    scopes: tuple[str, ...]
    ok: int
    #: a bound token may do it only on its own user's objects (the cell's objects are user U's)
    owned: bool = False
    #: a bound token may never do it (it concerns no user of its own)
    unbound_only: bool = False
    body: Callable[[dict[str, Any]], Any] | None = None


def _unique() -> str:
    return f"t{next(_seq)}"


#: operationId -> the rule. The objects of a cell: ``u`` (a user), ``post`` (by u), ``event`` (of u).
TABLE: dict[str, Row] = {
    "admin_databases_list": Row((S.ADMIN,), 200),
    "admin_databases_slow_queries": Row((S.ADMIN,), 200),
    "analytics_events_list": Row((S.READ,), 200),
    "analytics_events_retrieve": Row((S.READ,), 200),
    "analytics_events_summary_retrieve": Row((S.READ,), 200),
    "analytics_events_create": Row(
        (S.EVENTS_WRITE,), 201, owned=True, body=lambda o: {"event_type": "click", "user_id": o["u"].pk}
    ),
    "analytics_events_batch_create": Row(
        (S.EVENTS_WRITE,),
        201,
        owned=True,
        body=lambda o: {"events": [{"event_type": "click", "user_id": o["u"].pk}, {"event_type": "view"}]},
    ),
    "legacy_customers_list": Row((S.READ,), 200),
    "legacy_customers_retrieve": Row((S.READ,), 200),
    "posts_list": Row((S.READ,), 200),
    "posts_retrieve": Row((S.READ,), 200),
    "posts_create": Row((S.POSTS_WRITE,), 201, owned=True, body=lambda o: {"title": "t", "author_id": o["u"].pk}),
    "posts_update": Row((S.POSTS_WRITE,), 200, owned=True, body=lambda o: {"title": "t2", "author_id": o["u"].pk}),
    "posts_partial_update": Row((S.POSTS_WRITE,), 200, owned=True, body=lambda o: {"title": "t3"}),
    "posts_destroy": Row((S.POSTS_WRITE,), 204, owned=True),
    "registrations_create": Row(
        (S.REGISTRATIONS_WRITE, S.PII_READ),
        201,
        unbound_only=True,
        body=lambda o: {"username": o["name"], "email": f"{o['name']}@example.com"},
    ),
    "reports_new_user_activity": Row((S.READ,), 200),
    "stats": Row((S.READ,), 200),
    "users_list": Row((S.READ,), 200),
    "users_retrieve": Row((S.READ,), 200),
    "users_dashboard": Row((S.READ,), 200),
    "users_stats": Row((S.READ,), 200),
    "users_activity": Row((S.READ,), 200),
    "users_create": Row(
        (S.USERS_WRITE, S.PII_READ),
        201,
        unbound_only=True,
        body=lambda o: {"username": o["name"], "email": f"{o['name']}@example.com"},
    ),
    "users_update": Row(
        (S.USERS_WRITE, S.PII_READ),
        200,
        owned=True,
        body=lambda o: {"username": o["u"].username, "email": f"{o['name']}@example.com"},
    ),
    "users_partial_update": Row((S.USERS_WRITE, S.PII_READ), 200, owned=True, body=lambda o: {"first_name": "X"}),
    "users_destroy": Row((S.USERS_WRITE,), 204, owned=True),
}

#: kind -> the scopes its token has (None: no token; "expired"/"revoked" have every scope).
BOUND_SCOPES = (S.READ, S.POSTS_WRITE, S.EVENTS_WRITE, S.USERS_WRITE, S.REGISTRATIONS_WRITE, S.PII_READ)
KINDS: dict[str, tuple[str, ...] | None] = {
    "none": None,
    "read": (S.READ,),
    "posts:write": (S.POSTS_WRITE,),
    "events:write": (S.EVENTS_WRITE,),
    "users:write": (S.USERS_WRITE,),
    "registrations:write": (S.REGISTRATIONS_WRITE,),
    "legacy:write": (S.LEGACY_WRITE,),
    "pii:read": (S.PII_READ,),
    "admin": (S.ADMIN,),
    "registrar": (S.REGISTRATIONS_WRITE, S.PII_READ),
    "bound-own": BOUND_SCOPES,
    "bound-other": BOUND_SCOPES,
    "staff": S.ALL,
    "expired": S.ALL,
    "revoked": S.ALL,
}


def expected(row: Row, kind: str) -> int:
    scopes = KINDS[kind]
    if scopes is None or kind in ("expired", "revoked"):
        return 401
    if not set(row.scopes) <= set(scopes):
        return 403
    if kind.startswith("bound") and row.unbound_only:
        return 403
    if kind == "bound-other" and row.owned:
        return 403
    return row.ok


def schema_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    schema = yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8"))
    found = []
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((operation["operationId"], method, path, operation))
    return found


def test_every_operation_has_a_row_and_the_schema_states_its_scopes() -> None:
    operations = schema_operations()
    missing = sorted(op for op, *_ in operations if op not in TABLE)
    assert not missing, f"operations without a row in the scope table: {missing}"
    stale = sorted(set(TABLE) - {op for op, *_ in operations})
    assert not stale, f"rows for operations the schema no longer has: {stale}"
    for op, _, _, operation in operations:
        assert operation["x-required-scopes"] == list(TABLE[op].scopes), op
        assert "**Scope:**" in operation["description"], op
        assert "403" in operation["responses"], op


def _client(kind: str, bound_to: int, other: int) -> APIClient:
    if kind == "none":
        return APIClient()
    if kind == "staff":
        return api_client(staff=True)
    if kind in ("expired", "revoked"):
        _, token = make_account(staff=True)
        if kind == "expired":
            token.token.expires_at = token.token.created_at - dt.timedelta(seconds=1)
            token.token.save(update_fields=["expires_at"])
        else:
            token_revoke(prefix=token.prefix)
        return api_client(token=token)
    if kind.startswith("bound"):
        return api_client(scopes=KINDS[kind], user_id=bound_to if kind == "bound-own" else other)
    return api_client(scopes=KINDS[kind])


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_scope_table_holds_for_every_operation_and_kind_of_token() -> None:
    customer = make_customer()
    other = make_user()
    failures = []
    for op, method, path, _ in schema_operations():
        row = TABLE[op]
        for kind in KINDS:
            u = make_user()
            objects = {"u": u, "post": make_post(author=u), "event": make_event(user_id=u.pk), "name": _unique()}
            url = (
                path.replace("{user_id}", str(u.pk))
                .replace("{customer_id}", str(customer.pk))
                .replace(
                    "{id}",
                    str(
                        objects["event"].pk
                        if "/analytics/" in path
                        else objects["post"].pk
                        if "/posts/" in path
                        else u.pk
                    ),
                )
            )
            client = _client(kind, u.pk, other.pk)
            body = row.body(objects) if row.body else None
            response = (
                getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)
            )
            want = expected(row, kind)
            if response.status_code != want:
                failures.append(f"{op} {kind}: {response.status_code} (want {want}) {response.content[:160]!r}")
            elif want == 403 and not (kind.startswith("bound") and set(row.scopes) <= set(KINDS[kind] or ())):
                missing = next(s for s in row.scopes if s not in (KINDS[kind] or ()))
                if response.json().get("required_scope") != missing:
                    failures.append(f"{op} {kind}: 403 without required_scope {missing}: {response.content[:160]!r}")
            if want == 401 and kind in ("expired", "revoked"):
                word = "expired" if kind == "expired" else "revoked"
                if word not in response.json()["detail"]:
                    failures.append(f"{op} {kind}: 401 does not say {word}: {response.json()['detail']}")
    assert not failures, "\n".join(failures)
