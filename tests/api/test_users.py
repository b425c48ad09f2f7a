"""``/api/v1/users/``: CRUD on users_db, staff-only writes, filters, search, ordering, pagination."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.users.models import User
from tests.api.conftest import assert_problem, timeout_statements
from tests.factories import make_cache_entry, make_event, make_post, make_profile, make_user

URL = "/api/v1/users/"
DBS = [aliases.DEFAULT, aliases.USERS]
pytestmark = pytest.mark.django_db(databases=DBS)
#: DELETE /users/{id}/: queries on (users_db, analytics_db, cache_db), per USER_DELETION_ANALYTICS mode.
# users_db: 2 existence checks, the mark step's SELECT ... FOR UPDATE and UPDATE (the fence), the
# user's row and its DELETE; cache_db: the user's entries and, with the cache table there, their stats.
QUERIES = {"anonymise": (6, 2, 2), "delete": (6, 2, 2)}


def data_queries(captured: CaptureQueriesContext) -> list[str]:
    """Statements other than savepoints and the saga steps' per-transaction timeouts (PostgreSQL only)."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
        and "set_config(" not in q["sql"]
        and not q["sql"].upper().startswith("SET ")
    ]


def test_list_needs_a_token_401_with_www_authenticate() -> None:
    response = APIClient().get(URL)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_401() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert_problem(client.get(URL), 401)


def test_list_paginates_and_reports_count(client_) -> None:
    users = [make_user() for _ in range(7)]
    response = client_.get(URL, {"page_size": 3, "page": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 7
    assert [u["id"] for u in body["results"]] == [u.pk for u in users[3:6]]
    assert body["next"].endswith("page=3&page_size=3")
    assert "page_size=3" in body["previous"]
    assert set(body["results"][0]) == {"id", "username", "email", "first_name", "last_name", "created_at", "updated_at"}


@pytest.mark.parametrize("size", ["201", "0", "-1", "abc", "1.5"])
def test_bad_page_size_is_400_never_clamped(client_, size: str) -> None:
    assert_problem(client_.get(URL, {"page_size": size}), 400, "page_size")


def test_bad_page_is_400_and_past_the_end_is_404(client_) -> None:
    make_user()
    assert_problem(client_.get(URL, {"page": "x"}), 400, "page")
    assert_problem(client_.get(URL, {"page": "0"}), 400, "page")
    assert_problem(client_.get(URL, {"page": "99"}), 404)
    assert client_.get(URL, {"page": "last"}).status_code == 200


def test_filters_search_ordering(client_) -> None:
    a = make_user(username="alice", email="Alice@Example.com")
    b = make_user(username="bob", email="bob@example.com", first_name="Robert")
    old = make_user(username="carol")
    User.objects.filter(pk=old.pk).update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))

    def ids(**params: str) -> list[int]:
        response = client_.get(URL, params)
        assert response.status_code == 200, response.content
        return [u["id"] for u in response.json()["results"]]

    assert ids(username="alice") == [a.pk]
    assert ids(email="alice@example.COM") == [a.pk]
    assert ids(search="robert") == [b.pk]
    assert ids(created_before="2021-01-01T00:00:00Z") == [old.pk]
    assert ids(created_after="2021-01-01T00:00:00Z") == [a.pk, b.pk]
    assert ids(ordering="-username") == [old.pk, b.pk, a.pk]


@pytest.mark.parametrize(
    "params,field",
    [
        ({"ordering": "password"}, "ordering"),
        ({"ordering": "username,,id"}, "ordering"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"colour": "red"}, "colour"),
        ({"search": "a\x00b"}, "search"),
        ({"username": "a\x00b"}, "username"),
    ],
)
def test_unknown_ordering_malformed_filters_and_unknown_parameters_are_400(client_, params, field) -> None:
    assert_problem(client_.get(URL, params), 400, field)


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_list_query_counts_are_constant_in_page_size(client_) -> None:
    for _ in range(12):
        make_user()
    counts = []
    for size in (5, 50):
        with (
            CaptureQueriesContext(connections[aliases.DEFAULT]) as default,
            CaptureQueriesContext(connections[aliases.USERS]) as users,
        ):
            assert client_.get(URL, {"page_size": size}).status_code == 200
        counts.append((len(default), len(users)))
    # default: the token, looked up (and its use stamped) once and then remembered; users_db:
    # the statement timeout, COUNT(*) and the page.
    timeout = timeout_statements(aliases.USERS)
    assert counts == [(2, 2 + timeout), (0, 2 + timeout)]


def test_retrieve_and_unknown_ids(client_) -> None:
    user = make_user()
    assert client_.get(f"{URL}{user.pk}/").json()["username"] == user.username
    assert_problem(client_.get(f"{URL}{user.pk + 1000}/"), 404)
    assert_problem(client_.get(f"{URL}abc/"), 404)
    assert_problem(client_.get(f"{URL}{2**64}/"), 404)
    assert_problem(client_.get(f"{URL}99999999999999999999999999999/"), 404)
    for odd in ("%20" + str(user.pk), "1_0", "\u0663", "0", "-1", "%00"):
        assert_problem(client_.get(f"{URL}{odd}/"), 404)


def test_writes_need_staff_403(client_) -> None:
    user = make_user()
    assert_problem(client_.post(URL, {"username": "x", "email": "x@example.com"}, format="json"), 403)
    assert_problem(client_.patch(f"{URL}{user.pk}/", {"username": "y"}, format="json"), 403)
    assert_problem(client_.delete(f"{URL}{user.pk}/"), 403)


def test_create_update_and_uniqueness_on_users_db(staff_client) -> None:
    response = staff_client.post(URL, {"username": "neo", "email": "neo@example.com"}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert User.objects.get(pk=created["id"]).email == "neo@example.com"

    dup = staff_client.post(URL, {"username": "neo", "email": "NEO@example.com"}, format="json")
    body = assert_problem(dup, 400, "username", "email")
    assert {e["code"] for e in body["errors"]} == {"unique"}

    patched = staff_client.patch(f"{URL}{created['id']}/", {"first_name": "Thomas"}, format="json")
    assert patched.status_code == 200 and patched.json()["first_name"] == "Thomas"
    assert patched.json()["username"] == "neo"

    replaced = staff_client.put(
        f"{URL}{created['id']}/", {"username": "anderson", "email": "a@example.com"}, format="json"
    )
    assert replaced.status_code == 200
    assert replaced.json()["first_name"] == ""  # PUT replaces: omitted optional fields go back to default


@pytest.mark.parametrize(
    "body,field",
    [
        ({"email": "a@example.com"}, "username"),
        ({"username": "a", "email": "not-an-email"}, "email"),
        ({"username": "a" * 151, "email": "a@example.com"}, "username"),
        ({"username": "a\x00b", "email": "a@example.com"}, "username"),
        ({"username": 12, "email": ["a@example.com"]}, "email"),
    ],
)
def test_create_validation_errors(staff_client, body, field) -> None:
    assert_problem(staff_client.post(URL, body, format="json"), 400, field)


def test_malformed_json_is_400(staff_client) -> None:
    response = staff_client.generic("POST", URL, b'{"username": ', content_type="application/json")
    assert_problem(response, 400)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert_problem(staff_client.generic("POST", URL, deep, content_type="application/json"), 400)
    assert_problem(staff_client.generic("POST", URL, b"\xff\xfe", content_type="application/json"), 400)


def test_wrong_media_type_is_415(staff_client) -> None:
    assert_problem(
        staff_client.generic("POST", URL, b"username=x", content_type="application/x-www-form-urlencoded"), 415
    )


@pytest.mark.django_db(databases=[*DBS, aliases.ANALYTICS, aliases.CACHE])
@pytest.mark.parametrize("mode", ["anonymise", "delete"])
def test_destroy_deletes_everywhere_through_the_saga(staff_client, queries, settings, mode) -> None:
    settings.USER_DELETION_ANALYTICS = mode
    user = make_user()
    other = make_user()
    make_post(author=user)
    make_post(author=user)
    kept = make_post(author=other)
    make_profile(user_id=user.pk)
    mine = [make_event(user_id=user.pk).pk for _ in range(3)]
    theirs = make_event(user_id=other.pk)
    make_cache_entry(key=f"user:{user.pk}:stats")
    other_entry = make_cache_entry(key=f"user:{other.pk}:stats")
    with (
        queries(aliases.USERS) as on_users,
        queries(aliases.ANALYTICS) as on_analytics,
        queries(aliases.CACHE) as on_cache,
    ):
        response = staff_client.delete(f"{URL}{user.pk}/")
    assert response.status_code == 204, response.content
    assert not User.objects.filter(pk=user.pk).exists()
    assert list(Post.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not UserProfile.objects.filter(user_id=user.pk).exists()
    assert list(CacheEntry.objects.values_list("pk", flat=True)) == [other_entry.pk]
    if mode == "anonymise":
        assert set(AnalyticsEvent.objects.filter(user_id__isnull=True).values_list("pk", flat=True)) == set(mine)
    else:
        assert not AnalyticsEvent.objects.filter(pk__in=mine).exists()
    assert AnalyticsEvent.objects.get(pk=theirs.pk).user_id == other.pk
    # users_db: exists, the row kept for a restore, delete (collector select + DELETE); analytics_db:
    # the ids (or rows) kept, one UPDATE/DELETE; cache_db: one DELETE. None grows with the user's rows.
    assert tuple(len(data_queries(q)) for q in (on_users, on_analytics, on_cache)) == QUERIES[mode]
    assert_problem(staff_client.delete(f"{URL}{user.pk}/"), 404)


def test_uniqueness_is_checked_on_users_db_not_default(staff_client) -> None:
    make_user(username="taken", email="taken@example.com")
    with (
        CaptureQueriesContext(connections[aliases.DEFAULT]) as default,
        CaptureQueriesContext(connections[aliases.USERS]) as users,
    ):
        response = staff_client.post(URL, {"username": "taken", "email": "fresh@example.com"}, format="json")
    assert_problem(response, 400, "username")
    # the token's look-up and its last use stamped (api_token), nothing else on default
    assert len(default) == 2 and all("api_token" in q["sql"] for q in default.captured_queries)
    selects = [q["sql"] for q in users.captured_queries if "users_user" in q["sql"]]
    assert len(selects) == 2  # username, then email (case-insensitive)
    assert not any("INSERT" in q["sql"].upper() for q in users.captured_queries)


def test_max_length_counts_the_string_as_sent_before_trimming(staff_client) -> None:
    username = "\x1f" + "a" * 150  # 151 characters; trimming would make it 150
    response = staff_client.post(URL, {"username": username, "email": "t@example.com"}, format="json")
    assert_problem(response, 400, "username")


@pytest.mark.django_db(databases=[*DBS, aliases.ANALYTICS, aliases.CACHE], transaction=True)
def test_destroy_with_a_database_down_is_503_naming_the_step_and_removes_nothing(staff_client) -> None:
    from tests.sagas.faults import unreachable

    user = make_user()
    post = make_post(author=user)
    make_profile(user_id=user.pk)
    with unreachable(aliases.ANALYTICS):
        response = staff_client.delete(f"{URL}{user.pk}/")
    body = assert_problem(response, 503)
    assert (body["alias"], body["step"]) == (aliases.ANALYTICS, "analytics")
    assert User.objects.filter(pk=user.pk).exists() and Post.objects.filter(pk=post.pk).exists()
    assert UserProfile.objects.filter(user_id=user.pk).exists()


@pytest.mark.parametrize("param", ["ordering", "search"])
def test_empty_ordering_and_search_are_the_same_as_absent(client_, param) -> None:
    users = [make_user() for _ in range(3)]
    response = client_.get(URL, {param: ""})
    assert response.status_code == 200, response.content
    assert [u["id"] for u in response.json()["results"]] == [u.pk for u in users]
    assert_problem(client_.get(URL, {"ordering": ",username"}), 400, "ordering")
