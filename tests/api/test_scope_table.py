"""Who may do what, as one table: every operation of the committed schema against every kind of
token, with the status each must get (docs/security.md).

An operation added to the API without its row here fails :func:`test_every_operation_has_a_row`;
a row whose scopes differ from what the schema states fails too. The walk sends each request for
real (fresh objects per cell, so deletes and moves do not disturb the next cell).

The scope rule: a write scope also allows reading the resource it writes (``implied_by``), never
personal data and never another resource. The walk checks both ways that reads and writes agree:
every write that answers an object is followed by a read of that object with the same token,
which must answer the same representation (so no write is a read the token could not make), and
every token kind holding a write scope reads that resource (the rows' ``implied_by``), with
personal data null unless it holds ``pii:read``.
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

from core import aliases
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
    #: the write scopes that also allow this read, each on its own (a write scope reads its resource)
    implied_by: tuple[str, ...] = ()
    #: where a write's answer is read back with the same token: the answer's ``Location`` (a
    #: create) or the operation's own URL (an update); None when the answer is no stored object
    #: as a read shows it (a delete, a batch's count, a registration: see its row)
    read_back: str | None = None


def _unique() -> str:
    return f"t{next(_seq)}"


#: operationId -> the rule. The objects of a cell: ``u`` (a user), ``post`` (by u), ``event`` (of u).
TABLE: dict[str, Row] = {
    "admin_databases_list": Row((S.ADMIN,), 200),
    "admin_databases_slow_queries": Row((S.ADMIN,), 200),
    "analytics_events_list": Row((S.READ,), 200, implied_by=(S.EVENTS_WRITE,)),
    "analytics_events_retrieve": Row((S.READ,), 200, implied_by=(S.EVENTS_WRITE,)),
    "analytics_events_summary_retrieve": Row((S.READ,), 200, implied_by=(S.EVENTS_WRITE,)),
    "analytics_events_create": Row(
        (S.EVENTS_WRITE,),
        201,
        owned=True,
        body=lambda o: {"event_type": "click", "user_id": o["u"].pk},
        read_back="location",
    ),
    "analytics_events_batch_create": Row(
        (S.EVENTS_WRITE,),
        201,
        owned=True,
        body=lambda o: {"events": [{"event_type": "click", "user_id": o["u"].pk}, {"event_type": "view"}]},
    ),
    "legacy_customers_list": Row((S.READ,), 200, implied_by=(S.LEGACY_WRITE,)),
    "legacy_customers_retrieve": Row((S.READ,), 200, implied_by=(S.LEGACY_WRITE,)),
    "posts_list": Row((S.READ,), 200, implied_by=(S.POSTS_WRITE,)),
    "posts_retrieve": Row((S.READ,), 200, implied_by=(S.POSTS_WRITE,)),
    "posts_create": Row(
        (S.POSTS_WRITE,),
        201,
        owned=True,
        body=lambda o: {"title": "t", "author_id": o["u"].pk},
        read_back="location",
    ),
    "posts_update": Row(
        (S.POSTS_WRITE,),
        200,
        owned=True,
        body=lambda o: {"title": "t2", "author_id": o["u"].pk},
        read_back="self",
    ),
    # An empty PATCH changes nothing: it is the write that could pass for a read.
    "posts_partial_update": Row((S.POSTS_WRITE,), 200, owned=True, body=lambda o: {}, read_back="self"),
    "posts_destroy": Row((S.POSTS_WRITE,), 204, owned=True),
    # A create of a new user through its own scope: it answers the user and profile it made from
    # what the caller sent (plus ids and times), not a stored object it could not read before;
    # reading that user afterwards is a read of users (``read``). Checked in
    # test_a_registration_answers_only_what_it_created.
    "registrations_create": Row(
        (S.REGISTRATIONS_WRITE, S.PII_READ),
        201,
        unbound_only=True,
        body=lambda o: {"username": o["name"], "email": f"{o['name']}@example.com"},
    ),
    "reports_new_user_activity": Row((S.READ,), 200),
    "stats": Row((S.READ,), 200),
    "users_list": Row((S.READ,), 200, implied_by=(S.USERS_WRITE,)),
    "users_retrieve": Row((S.READ,), 200, implied_by=(S.USERS_WRITE,)),
    "users_dashboard": Row((S.READ,), 200),
    "users_stats": Row((S.READ,), 200),
    "users_activity": Row((S.READ,), 200),
    "users_create": Row(
        (S.USERS_WRITE, S.PII_READ),
        201,
        unbound_only=True,
        body=lambda o: {"username": o["name"], "email": f"{o['name']}@example.com"},
        read_back="location",
    ),
    "users_update": Row(
        (S.USERS_WRITE, S.PII_READ),
        200,
        owned=True,
        body=lambda o: {"username": o["u"].username, "email": f"{o['name']}@example.com"},
        read_back="self",
    ),
    "users_partial_update": Row((S.USERS_WRITE, S.PII_READ), 200, owned=True, body=lambda o: {}, read_back="self"),
    "users_destroy": Row((S.USERS_WRITE,), 204, owned=True),
}

#: kind -> the scopes its token has (None: no token; "expired"/"revoked" have every scope). Each
#: write scope appears alone (without ``read``), and with ``pii:read`` where its writes need it.
BOUND_SCOPES = (S.READ, S.POSTS_WRITE, S.EVENTS_WRITE, S.USERS_WRITE, S.REGISTRATIONS_WRITE, S.PII_READ)
#: a bound end-user client that writes and reads through its write scopes only
BOUND_WRITES = (S.POSTS_WRITE, S.EVENTS_WRITE, S.USERS_WRITE)
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
    "users:write+pii:read": (S.USERS_WRITE, S.PII_READ),
    "legacy:write+pii:read": (S.LEGACY_WRITE, S.PII_READ),
    "bound-own": BOUND_SCOPES,
    "bound-other": BOUND_SCOPES,
    "bound-own-writes": BOUND_WRITES,
    "bound-other-writes": BOUND_WRITES,
    "staff": S.ALL,
    "expired": S.ALL,
    "revoked": S.ALL,
}
PII_FIELDS = ("email", "first_name", "last_name", "customer_name", "customer_email")


def allowed(row: Row, scopes: tuple[str, ...]) -> bool:
    """The scope rule: the row's scopes, all of them, or one write scope that implies the read."""
    return set(row.scopes) <= set(scopes) or any(scope in scopes for scope in row.implied_by)


def expected(row: Row, kind: str) -> int:
    scopes = KINDS[kind]
    if scopes is None or kind in ("expired", "revoked"):
        return 401
    if not allowed(row, scopes):
        return 403
    if kind.startswith("bound") and row.unbound_only:
        return 403
    if kind.startswith("bound-other") and row.owned:
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
        assert operation["x-read-implied-by"] == list(TABLE[op].implied_by), op
        assert "**Scope:**" in operation["description"], op
        # Each operation states the rule where it names its scopes.
        assert "write scope" in operation["description"] and "`pii:read`" in operation["description"], op
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
        return api_client(scopes=KINDS[kind], user_id=bound_to if kind.startswith("bound-own") else other)
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
            elif want == 403 and not (kind.startswith("bound") and allowed(row, KINDS[kind] or ())):
                missing = next(s for s in row.scopes if s not in (KINDS[kind] or ()))
                if response.json().get("required_scope") != missing:
                    failures.append(f"{op} {kind}: 403 without required_scope {missing}: {response.content[:160]!r}")
            elif want == 200 and method == "get":
                failures += _personal_data_shown(
                    op, kind, response.json(), bound_to=u.pk if "own" in kind else other.pk
                )
            elif want in (200, 201) and row.read_back:
                failures += _reads_back(op, kind, client, response, url if row.read_back == "self" else None)
            if want == 401 and kind in ("expired", "revoked"):
                word = "expired" if kind == "expired" else "revoked"
                if word not in response.json()["detail"]:
                    failures.append(f"{op} {kind}: 401 does not say {word}: {response.json()['detail']}")
    assert not failures, "\n".join(failures)


def _reads_back(op: str, kind: str, client: APIClient, written: Any, url: str | None) -> list[str]:
    """A write's answer against a read of the same object with the same token: the read is allowed
    and answers the same representation (and the same ETag, where the write sent one)."""
    url = url or written["Location"]
    read = client.get(url)
    if read.status_code != 200:
        return [f"{op} {kind}: the write answered the object, a read of {url} is {read.status_code}"]
    if read.json() != written.json():
        return [f"{op} {kind}: the write answered {written.json()}, a read of {url} {read.json()}"]
    if written.has_header("ETag") and read["ETag"] != written["ETag"]:
        return [f"{op} {kind}: the write's ETag {written['ETag']} is not the read's {read['ETag']}"]
    return []


def _personal_data_shown(op: str, kind: str, body: Any, bound_to: int) -> list[str]:
    """Without ``pii:read`` no answer shows personal data (a write scope never implies it), but a
    bound token's own user's (``bound_to``)."""
    scopes = KINDS[kind] or ()
    if S.PII_READ in scopes:
        return []
    shown = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            is_own = kind.startswith("bound") and value.get("id") == bound_to and "username" in value
            shown.extend(name for name in PII_FIELDS if value.get(name) is not None and not is_own)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body)
    return [f"{op} {kind}: personal data {sorted(set(shown))} shown without pii:read"] if shown else []


def test_each_write_scope_implies_reading_its_own_resource_and_nothing_else() -> None:
    """The rows' ``implied_by`` against the schema's resources (its tags): a write scope allows
    every read of the resource it writes, no read of another (the aggregates, admin), and
    ``pii:read`` is never implied."""
    operations = schema_operations()
    tag_of = {op: operation["tags"][0] for op, _, _, operation in operations}
    writes: dict[str, set[str]] = {}
    for op, method, _, _ in operations:
        if method != "get":
            for scope in TABLE[op].scopes:
                if scope != S.PII_READ:
                    writes.setdefault(scope, set()).add(tag_of[op])
    assert set(writes) == {S.POSTS_WRITE, S.EVENTS_WRITE, S.USERS_WRITE, S.REGISTRATIONS_WRITE}
    for op, method, _, _ in operations:
        if method != "get":
            assert TABLE[op].implied_by == (), op
            continue
        want = {scope for scope, tags in writes.items() if tag_of[op] in tags}
        if tag_of[op] == "legacy":  # its writes are left out of the schema while the server refuses them
            want.add(S.LEGACY_WRITE)
        assert set(TABLE[op].implied_by) == want, op
        assert S.PII_READ not in TABLE[op].implied_by and S.ADMIN not in TABLE[op].implied_by, op


#: The queries that tell hidden personal data apart (a filter, a search, an order on it): each
#: needs ``pii:read`` on top of what the list needs, users and legacy customers alike.
PII_QUERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "users ?email=": ("/api/v1/users/?email=a@example.com", (S.USERS_WRITE,)),
    "users ?search=": ("/api/v1/users/?search=ada", (S.USERS_WRITE,)),
    "users ?ordering=email": ("/api/v1/users/?ordering=email", (S.USERS_WRITE,)),
    "customers ?search=": ("/api/v1/legacy/customers/?search=customer", (S.LEGACY_WRITE,)),
    "customers ?ordering=customer_email": ("/api/v1/legacy/customers/?ordering=customer_email", (S.LEGACY_WRITE,)),
    "customers ?ordering=-customer_name": ("/api/v1/legacy/customers/?ordering=-customer_name", (S.LEGACY_WRITE,)),
}


@pytest.mark.django_db(databases="__all__")
def test_queries_on_personal_data_need_pii_read_for_every_kind_of_token() -> None:
    make_user(email="a@example.com")
    make_customer()
    failures = []
    for name, (url, implied_by) in PII_QUERIES.items():
        for kind, scopes in KINDS.items():
            if scopes is None or kind in ("expired", "revoked"):
                continue
            response = _client(kind, make_user().pk, make_user().pk).get(url)
            if not (S.READ in scopes or set(implied_by) & set(scopes)):
                want, scope = 403, S.READ
            elif S.PII_READ not in scopes:
                want, scope = 403, S.PII_READ
            else:
                want, scope = 200, None
            if response.status_code != want or (scope and response.json().get("required_scope") != scope):
                failures.append(
                    f"{name} {kind}: {response.status_code} (want {want} {scope}) {response.content[:160]!r}"
                )
    assert not failures, "\n".join(failures)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_registration_answers_only_what_it_created() -> None:
    """A registrar (``registrations:write`` and ``pii:read``, no ``read``) cannot read users: its
    answer is the user and profile it just made, from the values it sent (plus the ids and times
    the databases gave them), so it is no read of anything stored before. Reading that user is a
    read of users: 403 naming ``read``."""
    client = api_client(scopes=KINDS["registrar"])
    sent = {"username": "reg_only", "email": "reg_only@example.com", "first_name": "R", "profile": {"bio": "b"}}
    response = client.post("/api/v1/registrations/", sent, format="json")
    assert response.status_code == 201, response.content
    user, profile = response.json()["user"], response.json()["profile"]
    assert set(user) == {"id", "username", "email", "first_name", "last_name", "created_at", "updated_at"}
    assert (user["username"], user["email"], user["first_name"], user["last_name"]) == (
        "reg_only",
        sent["email"],
        "R",
        "",
    )
    assert set(profile) == {"id", "user_id", "bio", "avatar_url", "created_at"}
    assert (profile["user_id"], profile["bio"], profile["avatar_url"]) == (user["id"], "b", "")
    refused = client.get(response["Location"])
    assert refused.status_code == 403 and refused.json()["required_scope"] == S.READ


@pytest.mark.django_db(databases=[aliases.DEFAULT])
def test_a_refused_read_names_read_and_the_write_scope_that_would_also_do() -> None:
    response = api_client(scopes=[S.EVENTS_WRITE]).get("/api/v1/posts/")
    assert response.status_code == 403
    assert response.json()["required_scope"] == S.READ
    assert response.json()["detail"] == "This operation needs a token with the `read` scope (or `posts:write`)."
    aggregate = api_client(scopes=[S.POSTS_WRITE]).get("/api/v1/stats/")
    assert aggregate.status_code == 403
    assert aggregate.json()["detail"] == "This operation needs a token with the `read` scope."
