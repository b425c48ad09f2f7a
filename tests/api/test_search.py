"""``?search=``: bounded on every list that has it, full-text on posts (PostgreSQL), and every list
under a statement timeout that answers a 503 ``query-timeout`` (never a 500) and leaves the
connection usable."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from core import aliases
from core.statement_timeout import statement_timeout
from tests.api.conftest import assert_problem, timeout_statements
from tests.factories import make_customer, make_post, make_user

POSTS = "/api/v1/posts/"
USERS = "/api/v1/users/"
CUSTOMERS = "/api/v1/legacy/customers/"
LISTS = [POSTS, USERS, CUSTOMERS]
DBS = [aliases.DEFAULT, aliases.USERS, aliases.LEGACY]
pytestmark = pytest.mark.django_db(databases=DBS)


def search_error(response) -> dict:  # type: ignore[no-untyped-def]
    body = assert_problem(response, 400, "search")
    return next(e for e in body["errors"] if e["field"] == "search")


@pytest.mark.parametrize("url", LISTS)
def test_the_probe_of_66_short_terms_is_refused(staff_client, url: str) -> None:
    probe = " ".join("abcdefghijk"[i % 11] for i in range(66))  # 131 characters: within the length
    error = search_error(staff_client.get(url, {"search": probe}))
    assert error["code"] == "too_many_terms"
    assert str(settings.SEARCH_MAX_TERMS) in error["message"]


@pytest.mark.parametrize("url", LISTS)
@override_settings(SEARCH_MAX_TERMS=3, SEARCH_MAX_TERM_LENGTH=5, SEARCH_MAX_LENGTH=20)
def test_terms_term_length_and_length_are_bounded_as_configured(staff_client, url: str) -> None:
    assert staff_client.get(url, {"search": "ab cd ef"}).status_code == 200  # at every limit
    assert staff_client.get(url, {"search": "abcde,cd"}).status_code == 200
    assert search_error(staff_client.get(url, {"search": "ab cd ef gh"}))["code"] == "too_many_terms"
    assert search_error(staff_client.get(url, {"search": "ab,cd,ef,gh"}))["code"] == "too_many_terms"
    assert search_error(staff_client.get(url, {"search": "abcdef"}))["code"] == "term_too_long"
    assert search_error(staff_client.get(url, {"search": '"ab cde"'}))["code"] == "term_too_long"  # a phrase
    assert search_error(staff_client.get(url, {"search": "a" + " " * 19 + "b"}))["code"] == "max_length"
    assert search_error(staff_client.get(url, {"search": "a\x00"}))["code"] == "null_characters_not_allowed"


def test_the_schema_states_the_bounds() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/v1/posts/", "/api/v1/users/", "/api/v1/legacy/customers/"):
        (param,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == "search"]
        assert param["schema"] == {"type": "string", "maxLength": settings.SEARCH_MAX_LENGTH}
        assert f"at most {settings.SEARCH_MAX_TERMS} terms" in param["description"]


def post_ids(client, **params: object) -> list[int]:  # type: ignore[no-untyped-def]
    response = client.get(POSTS, params)
    assert response.status_code == 200, response.content
    return [p["id"] for p in response.json()["results"]]


def test_post_search_covers_title_and_content_and_needs_every_term(client_) -> None:
    author = make_user()
    boats = make_post(author=author, title="Boats", content="A harbour full of sailing boats.")
    trains = make_post(author=author, title="Night trains", content="Sleeping cars across the harbour.")
    make_post(author=author, title="Gardens", content="Roses.")
    assert post_ids(client_, search="harbour") == [trains.pk, boats.pk]
    assert post_ids(client_, search="harbour trains") == [trains.pk]
    assert post_ids(client_, search="HARBOUR, boats") == [boats.pk]
    assert post_ids(client_, search="harbour volcano") == []
    assert client_.get(POSTS, {"search": "harbour"}).json()["count"] == 2


def test_post_search_is_by_word_on_postgresql_by_substring_elsewhere(client_) -> None:
    author = make_user()
    post = make_post(author=author, title="Running the marathon", content="")
    if connections[aliases.DEFAULT].vendor == "postgresql":
        assert post_ids(client_, search="runs") == [post.pk]  # English stemming: run, running, runs
        assert post_ids(client_, search="marath") == []  # a part of a word is not a word
        assert post_ids(client_, search="the") == []  # only words too common to index: no match
    else:
        assert post_ids(client_, search="marath") == [post.pk]
        assert post_ids(client_, search="runs") == []


@pytest.mark.parametrize("search", ["a & b", "!(x)|y", "x:* <-> z", "'it''s'", "\\", "t%e", "a_n", "🚀", "---", "*"])
def test_post_search_takes_any_characters(client_, search: str) -> None:
    """Query syntax of the database (tsquery operators, LIKE wildcards) is text like any other:
    no error, and no wildcard (``t%e`` would match "Plain title", ``a_n`` "Plain")."""
    make_post(author=make_user(), title="Plain title", content="Nothing else.")
    response = client_.get(POSTS, {"search": search})
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


@pytest.mark.real_engines
def test_post_search_reads_the_gin_index() -> None:
    from core.blog import selectors

    searched = selectors.post_search(queryset=selectors.post_list(), terms=["harbour", "boats"])
    sql, params = searched.query.sql_with_params()
    with connections[aliases.DEFAULT].cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small is otherwise read whole
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "blog_post_search" in plan, plan


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.CACHE], transaction=True)
def test_a_search_costs_what_a_page_costs(client_) -> None:
    author = make_user()
    for i in range(30):
        make_post(author=author, title=f"harbour {i}" if i % 2 else f"garden {i}")
    client_.get(POSTS)  # the token is looked up and remembered
    for size in (5, 15):
        with (
            CaptureQueriesContext(connections[aliases.DEFAULT]) as default,
            CaptureQueriesContext(connections[aliases.USERS]) as users,
        ):
            response = client_.get(POSTS, {"search": "harbour", "page_size": size})
        assert response.status_code == 200 and response.json()["count"] == 15
        # the statement timeout, COUNT(*), the page; the page's authors on users_db
        assert (len(default), len(users)) == (2 + timeout_statements(aliases.DEFAULT), 1)


@pytest.mark.real_engines
def test_a_list_inside_a_transaction_puts_the_previous_timeout_back() -> None:
    """Inside a caller's transaction the list is a savepoint: its limit does not outlive it
    (PostgreSQL; MariaDB's limit is a prefix of each statement, nothing to put back)."""
    alias = aliases.DEFAULT
    with connections[alias].cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 4321")
        with statement_timeout(alias, 50):
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "50ms"
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "4321ms"


def assert_query_timeout(response, alias: str) -> None:  # type: ignore[no-untyped-def]
    body = assert_problem(response, 503)
    assert body["type"] == "urn:switchyard:problem:query-timeout"
    assert body["alias"] == alias
    assert int(response["Retry-After"]) > 0


@pytest.mark.real_engines
@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.CACHE], transaction=True)
def test_a_post_search_past_the_timeout_is_a_503_and_the_next_request_succeeds(client_) -> None:
    """A real timeout on PostgreSQL: a search matching 200,000 posts with a 1 ms limit, in the
    list's own transaction as served (``transaction=True``: no test transaction around it)."""
    author = make_user()
    with connections[aliases.DEFAULT].cursor() as cursor:
        cursor.execute(
            "INSERT INTO blog_post (title, content, author_id, created_at, updated_at) "
            "SELECT 'harbour ' || g, 'boats at anchor', %s, now(), now() FROM generate_series(1, 200000) AS g",
            [author.pk],
        )
    with override_settings(LIST_STATEMENT_TIMEOUT_MS=1):
        assert_query_timeout(client_.get(POSTS, {"search": "harbour boats"}), aliases.DEFAULT)
    response = client_.get(POSTS, {"search": "harbour boats", "page_size": 1})
    assert response.status_code == 200 and response.json()["count"] == 200000
    with connections[aliases.DEFAULT].cursor() as cursor:  # nothing left on the session
        cursor.execute("SELECT current_setting('statement_timeout')")
        assert cursor.fetchone()[0] != "1ms"


@pytest.mark.real_engines
def test_a_customer_search_past_the_timeout_is_a_503_and_the_next_request_succeeds(staff_client) -> None:
    """A real timeout on MariaDB: a substring search over 100,000 customers with a 1 ms limit."""
    make_customer()  # the legacy table is written by tests only, with writes allowed briefly
    with connections[aliases.LEGACY].cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers (customer_name, customer_email, created_date) "
            "SELECT CONCAT('Customer ', seq), CONCAT('customer', seq, '@example.com'), NOW() FROM seq_1_to_100000"
        )
    with override_settings(LIST_STATEMENT_TIMEOUT_MS=1):
        assert_query_timeout(staff_client.get(CUSTOMERS, {"search": "zz"}), aliases.LEGACY)
    response = staff_client.get(CUSTOMERS, {"search": "customer99999"})
    assert response.status_code == 200 and response.json()["count"] == 1
    with connections[aliases.LEGACY].cursor() as cursor:  # nothing left on the session
        cursor.execute("SELECT @@SESSION.max_statement_time")
        assert float(cursor.fetchone()[0]) != 0.001
