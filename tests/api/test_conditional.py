"""ETag / If-None-Match (304) / If-Match (412) / REQUIRE_IF_MATCH (428) on users, posts and legacy
customers (issue 11, api/conditional.py)."""

from __future__ import annotations

import pytest
from django.db.models.signals import pre_save
from django.test import override_settings

from core import aliases
from core.blog.models import Post
from core.legacy.models import LegacyCustomer
from core.users.models import User
from tests.api.conftest import assert_problem
from tests.factories import api_client, make_customer, make_post, make_user
from tests.integrity.races import Pause, Runner, settle

ALL = ["default", "users_db", "analytics_db", "cache_db", "legacy_db"]
pytestmark = pytest.mark.django_db(databases=ALL)


def _post():
    post = make_post()
    return f"/api/v1/posts/{post.pk}/", {"title": "changed"}, lambda: Post.objects.get(pk=post.pk).title


def _user():
    user = make_user()
    return f"/api/v1/users/{user.pk}/", {"first_name": "Changed"}, lambda: User.objects.get(pk=user.pk).first_name


def _customer():
    customer = make_customer()
    return (
        f"/api/v1/legacy/customers/{customer.pk}/",
        {"customer_name": "Changed"},
        lambda: LegacyCustomer.objects.get(pk=customer.pk).customer_name,
    )


RESOURCES = {"post": _post, "user": _user, "customer": _customer}


@pytest.fixture
def resource(request):  # type: ignore[no-untyped-def]
    with override_settings(LEGACY_ALLOW_WRITES=True):
        yield RESOURCES[request.param]()


@pytest.mark.parametrize("resource", list(RESOURCES), indirect=True)
def test_get_has_a_strong_etag_and_if_none_match_answers_304(resource, staff_client) -> None:
    url, change, _ = resource
    first = staff_client.get(url)
    tag = first["ETag"]
    assert first.status_code == 200 and tag.startswith('"') and not tag.startswith("W/")
    assert staff_client.get(url)["ETag"] == tag  # stable
    again = staff_client.get(url, HTTP_IF_NONE_MATCH=tag)
    assert (again.status_code, again["ETag"], again.content) == (304, tag, b"")
    assert staff_client.get(url, HTTP_IF_NONE_MATCH=f'"other", W/{tag}').status_code == 304  # weak comparison
    assert staff_client.get(url, HTTP_IF_NONE_MATCH="*").status_code == 304
    assert staff_client.get(url, HTTP_IF_NONE_MATCH='"other"').status_code == 200
    changed = staff_client.patch(url, change, format="json")
    assert changed.status_code == 200 and changed["ETag"] != tag
    assert changed["ETag"] == staff_client.get(url)["ETag"]  # the write's answer names the new version
    assert staff_client.get(url, HTTP_IF_NONE_MATCH=tag).status_code == 200


@pytest.mark.parametrize("resource", list(RESOURCES), indirect=True)
def test_if_match_refuses_a_write_on_a_changed_resource(resource, staff_client) -> None:
    url, change, read = resource
    stale = staff_client.get(url)["ETag"]
    assert staff_client.patch(url, change, format="json").status_code == 200
    current = staff_client.get(url)["ETag"]
    before = read()
    other = {k: v + " again" for k, v in change.items()}
    body = assert_problem(staff_client.patch(url, other, format="json", HTTP_IF_MATCH=stale), 412)
    assert body["type"].endswith("precondition-failed")
    # The weak form of an older tag (as a compressor hands it out) is refused like the tag itself.
    assert_problem(staff_client.put(url, other, format="json", HTTP_IF_MATCH=f"W/{stale}"), 412)
    assert read() == before
    ok = staff_client.patch(url, other, format="json", HTTP_IF_MATCH=f'"nope", {current}')
    assert ok.status_code == 200 and read() == next(iter(other.values()))
    assert staff_client.patch(url, change, format="json", HTTP_IF_MATCH="*").status_code == 200
    assert_problem(staff_client.delete(url, HTTP_IF_MATCH=stale), 412)
    assert staff_client.delete(url, HTTP_IF_MATCH=staff_client.get(url)["ETag"]).status_code == 204
    assert staff_client.get(url).status_code == 404


@pytest.mark.parametrize("resource", list(RESOURCES), indirect=True)
def test_require_if_match_makes_it_mandatory(resource, staff_client) -> None:
    url, change, read = resource
    before = read()
    with override_settings(REQUIRE_IF_MATCH=True):
        assert staff_client.get(url).status_code == 200
        assert assert_problem(staff_client.patch(url, change, format="json"), 428)["type"].endswith(
            "precondition-required"
        )
        assert_problem(staff_client.put(url, change, format="json"), 428)
        assert_problem(staff_client.delete(url), 428)
        assert read() == before
        tag = staff_client.get(url)["ETag"]
        assert staff_client.patch(url, change, format="json", HTTP_IF_MATCH=tag).status_code == 200


def test_compressed_answers_weaken_the_etag_and_both_forms_work(staff_client) -> None:
    """A read of 1 KB and more, compressed (api.middleware.CompressionMiddleware), carries W/"x";
    If-None-Match with either form is a 304, If-Match with either form of the current tag
    writes, and either form of an older tag is a 412."""
    import gzip
    import json

    post = make_post(content="a paragraph of text " * 100)
    url = f"/api/v1/posts/{post.pk}/"
    plain = staff_client.get(url)
    strong = plain["ETag"]
    assert "Content-Encoding" not in plain and strong.startswith('"') and len(plain.content) >= 1024
    packed = staff_client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
    assert packed["ETag"] == f"W/{strong}" and json.loads(gzip.decompress(packed.content)) == plain.json()
    for sent in (strong, f"W/{strong}"):
        again = staff_client.get(url, HTTP_IF_NONE_MATCH=sent, HTTP_ACCEPT_ENCODING="gzip")
        assert (again.status_code, again.content) == (304, b"")
    written = staff_client.patch(url, {"title": "one"}, format="json", HTTP_IF_MATCH=f"W/{strong}")
    assert written.status_code == 200 and written["ETag"] != strong
    for sent in (strong, f"W/{strong}"):
        assert_problem(staff_client.patch(url, {"title": "two"}, format="json", HTTP_IF_MATCH=sent), 412)
    assert Post.objects.get(pk=post.pk).title == "one"


def test_created_resources_carry_their_etag(staff_client) -> None:
    author = make_user()
    created = staff_client.post("/api/v1/posts/", {"author_id": author.pk, "title": "t"}, format="json")
    assert created.status_code == 201
    assert created["ETag"] == staff_client.get(f"/api/v1/posts/{created.json()['id']}/")["ETag"]


def test_missing_resource_with_if_match_is_404(staff_client) -> None:
    assert_problem(staff_client.patch("/api/v1/posts/987654/", {"title": "x"}, format="json", HTTP_IF_MATCH="*"), 404)


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_two_writers_naming_one_version_get_one_200_and_one_412() -> None:
    """Writer A holds the post (paused before its UPDATE, after the If-Match check); writer B sends
    the same If-Match meanwhile. B waits for A's row lock, then sees the new version: 412. Without
    the lock around the check, B's check would pass too and overwrite A (a lost update)."""
    post = make_post()
    url = f"/api/v1/posts/{post.pk}/"
    first, second = api_client(staff=True), api_client(staff=True)
    tag = first.get(url)["ETag"]
    pause = Pause()

    def hold(sender, instance, **kwargs):  # type: ignore[no-untyped-def]
        if instance.pk == post.pk and instance.title == "from A":
            pause()

    pre_save.connect(hold, sender=Post)
    try:
        a = Runner(lambda: first.patch(url, {"title": "from A"}, format="json", HTTP_IF_MATCH=tag))
        a.start()
        pause.wait()
        b = Runner(lambda: second.patch(url, {"title": "from B"}, format="json", HTTP_IF_MATCH=tag))
        b.start()
        settle(b, aliases.DEFAULT)
        pause.go.set()
        a.join(20)
        b.join(20)
    finally:
        pre_save.disconnect(hold, sender=Post)
    assert a.error is None and b.error is None, (a.error, b.error)
    assert (a.result.status_code, b.result.status_code) == (200, 412)
    assert Post.objects.get(pk=post.pk).title == "from A"
