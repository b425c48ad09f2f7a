"""Times carry a timezone (API.md): a naive date-time, or a bare date, is a 400 naming the field."""

from __future__ import annotations

import pytest

from core import aliases
from core.analytics.models import AnalyticsEvent
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS])
EVENTS = "/api/v1/analytics/events/"


@pytest.mark.parametrize(
    "url,param",
    [
        ("/api/v1/users/", "created_after"),
        ("/api/v1/users/", "created_before"),
        ("/api/v1/posts/", "created_after"),
        (EVENTS, "since"),
        (EVENTS, "until"),
        (f"{EVENTS}summary/", "since"),
    ],
)
@pytest.mark.parametrize("value", ["2026-11-01T00:00:00", "2026-11-01", "2026-11-01 00:00"])
def test_naive_times_in_filters_are_400(client_, url: str, param: str, value: str) -> None:
    body = assert_problem(client_.get(url, {param: value}), 400, param)
    assert "timezone" in body["errors"][0]["message"]


@pytest.mark.parametrize("value", ["2026-11-01T00:00:00Z", "2026-11-01T00:00:00+01:00"])
def test_times_with_a_timezone_are_accepted(client_, value: str) -> None:
    for url, param in (("/api/v1/users/", "created_after"), (EVENTS, "since"), (f"{EVENTS}summary/", "until")):
        assert client_.get(url, {param: value}).status_code == 200


def test_a_naive_event_timestamp_is_400(client_) -> None:
    body = assert_problem(
        client_.post(EVENTS, {"event_type": "v", "timestamp": "2026-11-25T10:00:00"}, format="json"), 400, "timestamp"
    )
    assert "timezone" in body["errors"][0]["message"]
    batch = client_.post(
        f"{EVENTS}batch/", {"events": [{"event_type": "v", "timestamp": "2026-11-25T10:00:00"}]}, format="json"
    )
    assert_problem(batch, 400, "events[0].timestamp")
    ok = client_.post(EVENTS, {"event_type": "v", "timestamp": "2026-11-25T10:00:00Z"}, format="json")
    assert ok.status_code == 201 and AnalyticsEvent.objects.count() == 1


def test_the_schema_says_so() -> None:
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    params = {p["name"]: p for p in paths["/api/v1/users/"]["get"]["parameters"]}
    assert "timezone" in params["created_after"]["description"]
