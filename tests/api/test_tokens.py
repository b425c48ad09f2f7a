"""Tokens at rest, expiry, last use, the commands, and the upgrade of DRF's clear keys."""

from __future__ import annotations

import datetime as dt
import importlib
import io

import pytest
from django.apps import apps as global_apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from api import authentication
from core import aliases
from core.tokens.models import ApiToken
from core.tokens.services import key_digest
from tests.api.conftest import assert_problem
from tests.factories import api_client, make_account, make_event, make_post, make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS])


def command(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_key_appears_in_no_table_only_its_hash() -> None:
    key = command("create_api_token", "at-rest", "--scopes", "read,posts:write").strip()
    found = []
    connection = connections[aliases.DEFAULT]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                if any(key in str(value) for value in row):
                    found.append((table, columns))
    assert found == []
    token = ApiToken.objects.get(prefix=key[:12])
    assert token.digest == key_digest(key) and len(token.digest) == 64


def test_commands_list_and_revoke(capsys) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    key = command(
        "create_api_token", "lister", "--scopes", "read,events:write", "--user-id", str(user.pk), "--expires", "30d"
    ).strip()
    listing = command("list_api_tokens")
    assert key[:12] in listing and key not in listing
    line = next(l for l in listing.splitlines() if l.startswith(key[:12]))
    assert "lister" in line and "read,events:write" in line and str(user.pk) in line
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/posts/").status_code == 200
    assert "revoked" in command("revoke_api_token", key[:12])
    assert "revoked" in assert_problem(client.get("/api/v1/posts/"), 401)["detail"]
    with pytest.raises(CommandError):
        command("revoke_api_token", "nope")


@pytest.mark.parametrize(
    "args",
    [
        ["x", "--scopes", "read,bogus"],
        ["x", "--scopes", "admin"],
        ["x", "--staff", "--scopes", "read"],
        ["x", "--expires", "10y"],
        ["x", "--user-id", "0"],
    ],
)
def test_create_api_token_refuses_bad_requests(args: list[str]) -> None:
    with pytest.raises(CommandError):
        command("create_api_token", *args)


def test_an_expired_token_is_a_401_saying_so() -> None:
    _, token = make_account(expires_in=dt.timedelta(seconds=60))
    client = api_client(token=token)
    assert client.get("/api/v1/posts/").status_code == 200
    ApiToken.objects.filter(pk=token.token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    authentication.forget_all()
    body = assert_problem(client.get("/api/v1/posts/"), 401)
    assert "expired" in body["detail"]


def test_last_use_is_written_at_most_once_a_minute(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, token = make_account()
    client = api_client(token=token)
    clock = [1_000_000.0]
    monkeypatch.setattr(authentication.time, "time", lambda: clock[0])
    writes = []
    for step in range(5):  # five requests 20 s apart: written at 0 s and 60 s
        with_updates = connections[aliases.DEFAULT]
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(with_updates) as q:
            assert client.get("/api/v1/posts/?page_size=1").status_code == 200
        writes.append(
            sum(s["sql"].lstrip().upper().startswith("UPDATE") and "api_token" in s["sql"] for s in q.captured_queries)
        )
        clock[0] += 20
    assert writes == [1, 0, 0, 1, 0]
    stamped = ApiToken.objects.get(pk=token.token.pk).last_used_at
    assert stamped == dt.datetime.fromtimestamp(1_000_060.0, dt.UTC)


def test_bound_token_events_batch_with_another_user_is_refused_whole() -> None:
    own, other = make_user(), make_user()
    client = api_client(scopes=["read", "events:write"], user_id=own.pk)
    before = make_event().__class__.objects.count()
    events = [{"event_type": "click", "user_id": own.pk}, {"event_type": "click", "user_id": other.pk}]
    assert_problem(client.post("/api/v1/analytics/events/batch/", {"events": events}, format="json"), 403)
    assert make_event().__class__.objects.count() == before + 1  # only the probe event above
    ok = client.post(
        "/api/v1/analytics/events/batch/", {"events": events[:1] + [{"event_type": "view"}]}, format="json"
    )
    assert ok.status_code == 201


def test_bound_token_cannot_move_its_post_to_another_author() -> None:
    own, other = make_user(), make_user()
    post = make_post(author=own)
    client = api_client(scopes=["read", "posts:write"], user_id=own.pk)
    assert_problem(client.patch(f"/api/v1/posts/{post.pk}/", {"author_id": other.pk}, format="json"), 403)
    post.refresh_from_db()
    assert post.author_id == own.pk
    assert client.patch(f"/api/v1/posts/{post.pk}/", {"title": "mine"}, format="json").status_code == 200


def test_the_upgrade_hashes_drf_tokens_and_deletes_the_clear_keys() -> None:
    staff = get_user_model().objects.create_user(username="old-staff", password=None, is_staff=True)
    plain = get_user_model().objects.create_user(username="old-plain", password=None)
    old = {account.username: Token.objects.create(user=account).key for account in (staff, plain)}
    migration = importlib.import_module("core.tokens.migrations.0002_hash_drf_tokens")

    class Editor:
        connection = connections[aliases.DEFAULT]

    migration.hash_drf_tokens(global_apps, Editor())
    assert not Token.objects.exists()
    for username, key in old.items():
        token = ApiToken.objects.get(digest=key_digest(key))
        assert token.account.username == username and token.prefix == key[:12]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert client.get("/api/v1/posts/").status_code == 200
    assert ApiToken.objects.get(prefix=old["old-staff"][:12]).scope_set >= {"admin", "users:write"}
    assert "users:write" not in ApiToken.objects.get(prefix=old["old-plain"][:12]).scope_set
