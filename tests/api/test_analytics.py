"""``/api/v1/analytics/events/``: cursor pages by timestamp, batch ingest all-or-nothing, summary."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.analytics.services import INSERT_CHUNK
from tests.api.conftest import assert_problem, timeout_statements
from tests.factories import api_client, make_event

URL = "/api/v1/analytics/events/"
pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.ANALYTICS])
T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def events_at(n: int, **fields: object) -> list[AnalyticsEvent]:
    return [make_event(timestamp=T0 + dt.timedelta(minutes=i), **fields) for i in range(n)]


def test_needs_a_token() -> None:
    assert_problem(APIClient().get(URL), 401)
    assert_problem(APIClient().post(f"{URL}batch/", {"events": []}, format="json"), 401)
    assert_problem(APIClient().get(f"{URL}summary/"), 401)


def test_list_walks_every_event_newest_first_by_cursor(client_) -> None:
    events = events_at(7)
    # Two events with the same timestamp must not be lost or repeated across pages.
    events.append(make_event(timestamp=events[3].timestamp))
    seen: list[int] = []
    response = client_.get(URL, {"page_size": 3})
    while True:
        assert response.status_code == 200
        body = response.json()
        assert "count" not in body
        seen += [e["id"] for e in body["results"]]
        if not body["next"]:
            break
        response = client_.get(body["next"])
    expected = [e.pk for e in sorted(events, key=lambda e: (e.timestamp, e.pk), reverse=True)]
    assert seen == expected


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.ANALYTICS], transaction=True)
def test_list_query_counts_constant_in_page_size(client_) -> None:
    events_at(60)
    counts = []
    for size in (5, 50):
        with (
            CaptureQueriesContext(connections[aliases.DEFAULT]) as default,
            CaptureQueriesContext(connections[aliases.ANALYTICS]) as analytics,
        ):
            assert client_.get(URL, {"page_size": size}).status_code == 200
        counts.append((len(default), len(analytics)))
    # the token (looked up once and its first use stamped, then remembered); the statement timeout
    # and one page query (no COUNT with a cursor)
    timeout = timeout_statements(aliases.ANALYTICS)
    assert counts == [(2, 1 + timeout), (0, 1 + timeout)]


def test_filters(client_) -> None:
    views = events_at(3, event_type="page_view", user_id=1)
    click = make_event(event_type="click", user_id=2, timestamp=T0 + dt.timedelta(hours=5))

    def ids(**params: object) -> list[int]:
        response = client_.get(URL, params)
        assert response.status_code == 200, response.content
        return [e["id"] for e in response.json()["results"]]

    assert ids(event_type="click") == [click.pk]
    assert ids(user_id=1) == [e.pk for e in reversed(views)]
    assert ids(since=(T0 + dt.timedelta(minutes=1)).isoformat(), until=(T0 + dt.timedelta(minutes=2)).isoformat()) == [
        views[1].pk
    ]


@pytest.mark.parametrize(
    "params,field",
    [
        ({"cursor": "garbage"}, "cursor"),
        ({"page_size": "500"}, "page_size"),
        ({"user_id": str(2**70)}, "user_id"),
        ({"since": "not-a-date"}, "since"),
        ({"ordering": "timestamp"}, "ordering"),
    ],
)
def test_list_bad_parameters_are_400(client_, params, field) -> None:
    assert_problem(client_.get(URL, params), 400, field)


def test_create_retrieve_and_validation(client_) -> None:
    response = client_.post(
        URL, {"event_type": "signup", "user_id": 5, "data": {"plan": "pro", "emoji": "🚀"}}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["data"] == {"plan": "pro", "emoji": "🚀"}
    assert client_.get(f"{URL}{body['id']}/").json()["event_type"] == "signup"
    assert_problem(client_.get(f"{URL}{body['id'] + 100}/"), 404)
    assert_problem(client_.post(URL, {"event_type": "x", "data": [1, 2]}, format="json"), 400, "data")
    assert_problem(client_.post(URL, {"event_type": "x", "data": {"k": "a\x00"}}, format="json"), 400, "data")
    assert_problem(client_.post(URL, {"event_type": "x" * 51}, format="json"), 400, "event_type")
    assert_problem(client_.post(URL, {"event_type": "x", "timestamp": "soon"}, format="json"), 400, "timestamp")
    assert_problem(client_.post(URL, {"event_type": "x", "user_id": -1}, format="json"), 400, "user_id")


def test_batch_writes_all_in_bulk(client_) -> None:
    events = [{"event_type": "view", "user_id": i % 7 + 1, "data": {"i": i, "s": "ü🚀"}} for i in range(2500)]
    events[0]["timestamp"] = "2026-01-02T03:04:05.678901+02:00"
    with CaptureQueriesContext(connections[aliases.ANALYTICS]) as analytics:
        response = client_.post(f"{URL}batch/", {"events": events}, format="json")
    assert response.status_code == 201, response.content[:300]
    assert response.json() == {"created": 2500}
    assert AnalyticsEvent.objects.count() == 2500
    assert "analytics_db;dur=" in response["Server-Timing"]
    first = AnalyticsEvent.objects.get(data__i=0)
    assert first.timestamp == dt.datetime(2026, 1, 2, 1, 4, 5, 678901, tzinfo=dt.UTC)
    assert first.data == {"i": 0, "s": "ü🚀"} and first.user_id == 1 and first.session_id == ""
    inserts = [q for q in analytics.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    if connections[aliases.ANALYTICS].vendor == "postgresql":
        assert inserts == []  # one COPY (it does not pass through Django's query log)
    else:
        fields = [f for f in AnalyticsEvent._meta.concrete_fields if not f.primary_key]
        per_statement = min(INSERT_CHUNK, connections[aliases.ANALYTICS].ops.bulk_batch_size(fields, events))
        assert per_statement >= 100  # multi-row inserts, not one per event
        assert len(inserts) == -(-2500 // per_statement)


def test_batch_is_all_or_nothing(client_) -> None:
    events = [{"event_type": "view"} for _ in range(10)]
    events[4] = {"event_type": ""}
    events[8] = {"event_type": "view", "user_id": "x"}
    body = assert_problem(client_.post(f"{URL}batch/", {"events": events}, format="json"), 400)
    assert {e["field"] for e in body["errors"]} == {"events[4].event_type", "events[8].user_id"}
    assert AnalyticsEvent.objects.count() == 0


def test_batch_limits(client_) -> None:
    assert_problem(client_.post(f"{URL}batch/", {"events": []}, format="json"), 400, "events")
    assert_problem(client_.post(f"{URL}batch/", {}, format="json"), 400, "events")
    too_many = json.dumps({"events": [{"event_type": "v"}] * (settings.EVENT_BATCH_MAX_EVENTS + 1)})
    assert_problem(client_.generic("POST", f"{URL}batch/", too_many, content_type="application/json"), 400, "events")
    assert AnalyticsEvent.objects.count() == 0


def test_batch_of_ten_thousand(client_) -> None:
    events = [{"event_type": f"t{i % 5}", "session_id": f"s{i}"} for i in range(settings.EVENT_BATCH_MAX_EVENTS)]
    response = client_.post(f"{URL}batch/", {"events": events}, format="json")
    assert response.status_code == 201 and response.json() == {"created": settings.EVENT_BATCH_MAX_EVENTS}
    assert AnalyticsEvent.objects.count() == settings.EVENT_BATCH_MAX_EVENTS


def test_summary_counts_by_type(client_) -> None:
    events_at(3, event_type="view", user_id=1)
    events_at(2, event_type="click", user_id=2)
    make_event(event_type="view", user_id=2, timestamp=T0 - dt.timedelta(days=1))
    with CaptureQueriesContext(connections[aliases.ANALYTICS]) as analytics:
        body = client_.get(f"{URL}summary/").json()
    assert len(analytics) == 1
    assert body == {"counts": [{"event_type": "view", "count": 4}, {"event_type": "click", "count": 2}], "total": 6}
    assert client_.get(f"{URL}summary/", {"user_id": 2}).json()["total"] == 3
    since = client_.get(f"{URL}summary/", {"since": T0.isoformat(), "until": timezone.now().isoformat()}).json()
    assert since["counts"] == [{"event_type": "view", "count": 3}, {"event_type": "click", "count": 2}]
    assert_problem(client_.get(f"{URL}summary/", {"user_id": "x"}), 400, "user_id")
    assert_problem(client_.get(f"{URL}summary/", {"event": "x"}), 400, "event")
    assert_problem(client_.get(f"{URL}summary/", {"until": ""}), 400, "until")


def test_empty_cursor_is_the_first_page_and_a_nul_cursor_is_400(client_) -> None:
    events = events_at(3)
    response = client_.get(URL, {"cursor": ""})
    assert response.status_code == 200
    assert [e["id"] for e in response.json()["results"]] == [e.pk for e in reversed(events)]
    for bad in ("\x00", "%00", "bnwyMDI2LTExLTAxVDEyOjAwOjAwfDE", "cHwyMDI2fDE", "n|x|1"):
        assert_problem(client_.get(URL, {"cursor": bad}), 400, "cursor")


def test_keyset_cursor_walks_many_ties_forward_and_backward(client_) -> None:
    """1,500 events sharing one timestamp and user: every row exactly once, in order, both ways."""
    AnalyticsEvent.objects.bulk_create(
        [AnalyticsEvent(event_type="tie", user_id=782, timestamp=T0) for _ in range(1500)]
    )
    make_event(event_type="tie", user_id=782, timestamp=T0 + dt.timedelta(seconds=1))
    make_event(event_type="tie", user_id=782, timestamp=T0 - dt.timedelta(seconds=1))
    make_event(event_type="other", user_id=1, timestamp=T0)
    expected = list(
        AnalyticsEvent.objects.filter(user_id=782).order_by("-timestamp", "-id").values_list("id", flat=True)
    )
    assert len(expected) == 1502
    seen: list[int] = []
    pages: list[dict] = []
    response = client_.get(URL, {"user_id": 782, "page_size": 200})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        pages.append(body)
        seen += [e["id"] for e in body["results"]]
        if not body["next"]:
            break
        with CaptureQueriesContext(connections[aliases.ANALYTICS]) as analytics:
            response = client_.get(body["next"])
        # one keyset query per page (besides the statement timeout's own statements)
        assert sum("analytics_event" in q["sql"] for q in analytics.captured_queries) == 1
    assert seen == expected
    assert len(pages) == 8 and pages[0]["previous"] is None
    # Backward from the last page: each previous page is exactly the page before it.
    back: list[list[int]] = [[e["id"] for e in pages[-1]["results"]]]
    link = pages[-1]["previous"]
    while link:
        body = client_.get(link).json()
        back.insert(0, [e["id"] for e in body["results"]])
        link = body["previous"]
    assert back == [[e["id"] for e in page["results"]] for page in pages]
    assert [i for page in back for i in page] == expected


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
def test_batch_service_validates_on_its_own() -> None:
    from core.analytics.services import event_batch_create
    from core.errors import FieldErrors

    good = {"event_type": "view", "timestamp": T0}
    bad = [
        good,
        {"event_type": ""},
        {"event_type": "x" * 51},
        {"event_type": "v", "user_id": 0},
        {"event_type": "v", "user_id": True},
        {"event_type": "v", "timestamp": dt.datetime(2026, 1, 1)},
        {"event_type": "v", "data": [1]},
        {"event_type": "v", "session_id": "s" * 101},
    ]
    with pytest.raises(FieldErrors) as caught:
        event_batch_create(events=bad)
    assert set(caught.value.errors) == {
        "events[1].event_type",
        "events[2].event_type",
        "events[3].user_id",
        "events[4].user_id",
        "events[5].timestamp",
        "events[6].data",
        "events[7].session_id",
    }
    assert AnalyticsEvent.objects.count() == 0
    assert event_batch_create(events=[good, {"event_type": "click", "user_id": 3}]) == 2
    with pytest.raises(FieldErrors):
        event_batch_create(events=[good] * (settings.EVENT_BATCH_MAX_EVENTS + 1))


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.ANALYTICS])
@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z"])
def test_implausible_event_times_are_refused(stamp):
    client = api_client()
    single = client.post("/api/v1/analytics/events/", {"event_type": "x", "timestamp": stamp}, format="json")
    assert single.status_code == 400, single.content
    assert single.json()["errors"][0]["field"] == "timestamp"
    batch = client.post(
        "/api/v1/analytics/events/batch/",
        {"events": [{"event_type": "ok"}, {"event_type": "x", "timestamp": stamp}]},
        format="json",
    )
    assert batch.status_code == 400
    assert batch.json()["errors"][0]["field"] == "events[1].timestamp"
    assert AnalyticsEvent.objects.count() == 0
