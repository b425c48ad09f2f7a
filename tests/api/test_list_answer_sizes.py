"""The largest answer of every list (docs/api.md, "Limits"): maximal rows of worst-case characters
(U+0001, which JSON writes as six bytes), read at the list's maximal page size, weigh at most what
the page states and at most 8 MB; the page says the same figures as :mod:`api.limits`."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from api import limits
from api.serializers.fields import json_object_size, json_size
from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.legacy.models import LegacyCustomer
from core.users.models import User
from routers.state import allow_legacy_writes
from tests.api.conftest import assert_problem
from tests.factories import api_client
from tests.services.faults import wait_for_fanout_idle

EIGHT_MB = 8_000_000
W = limits.WORST_CHAR
#: Control characters a text may hold (no NUL), to make maximal texts distinct.
MARKS = [chr(c) for c in range(1, 32)]
LISTS = {
    "posts": "/api/v1/posts/",
    "users": "/api/v1/users/",
    "customers": "/api/v1/legacy/customers/",
    "events": "/api/v1/analytics/events/",
    "new_user_report": "/api/v1/reports/new-user-activity/",
}


def _distinct(n: int, length: int) -> list[str]:
    """``n`` different texts of ``length`` worst-case characters."""
    marks = itertools.product(MARKS, repeat=3)
    return [W * (length - 3) + "".join(next(marks)) for _ in range(n)]


def _maximal_users(n: int) -> list[User]:
    names = _distinct(n, settings.USER_USERNAME_MAX_CHARS)
    emails = _distinct(n, settings.USER_EMAIL_MAX_CHARS)
    first, last = W * settings.USER_NAME_MAX_CHARS, W * settings.USER_NAME_MAX_CHARS
    return User.objects.bulk_create(
        [
            User(username=name, email=email, first_name=first, last_name=last)
            for name, email in zip(names, emails, strict=True)
        ]
    )


def _maximal_data() -> dict[str, Any]:
    """Event data of exactly EVENT_DATA_MAX_BYTES as written back, with the floats PostgreSQL
    gives back longest and worst-case characters."""
    data: dict[str, Any] = {"f": [1.7976931348623157e308] * 10, "s": ""}
    room = settings.EVENT_DATA_MAX_BYTES - json_object_size(data)
    data["s"] = W * (room // 6) + "x" * (room % 6)
    assert json_object_size(data) == settings.EVENT_DATA_MAX_BYTES
    return data


def _assert_within(name: str, body: bytes) -> None:
    row, most, stated = limits.figures(name)
    assert len(body) <= stated <= EIGHT_MB
    # The rows are maximal: the answer comes close to its bound (the envelope's room aside, and
    # on SQLite an event's large floats are read back as written, not as all their digits).
    assert len(body) >= most * row * 0.8, (len(body), most * row)


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])
def test_the_posts_list_at_its_largest() -> None:
    _, most, _ = limits.figures("posts")
    assert most < limits.MAX_PAGE_SIZE  # 200 maximal posts would weigh about 79 MB
    (author,) = _maximal_users(1)
    Post.objects.bulk_create(
        [
            Post(
                title=W * settings.POST_TITLE_MAX_CHARS,
                content=W * settings.POST_CONTENT_MAX_CHARS,
                author_id=author.pk,
            )
            for _ in range(most + 1)
        ]
    )
    client = api_client(staff=True)
    response = client.get("/api/v1/posts/", {"page_size": most})
    assert response.status_code == 200 and len(response.json()["results"]) == most
    _assert_within("posts", response.content)
    assert_problem(client.get("/api/v1/posts/", {"page_size": most + 1}), 400, "page_size")


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])
def test_the_users_list_at_its_largest() -> None:
    _, most, _ = limits.figures("users")
    _maximal_users(most)
    response = api_client(staff=True).get("/api/v1/users/", {"page_size": most})  # with pii:read
    assert response.status_code == 200 and len(response.json()["results"]) == most
    assert response.json()["results"][0]["email"].startswith(W)
    _assert_within("users", response.content)


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.LEGACY])
def test_the_customers_list_at_its_largest() -> None:
    _, most, _ = limits.figures("customers")
    stamp = timezone.now().replace(microsecond=0)  # the legacy column keeps whole seconds
    with allow_legacy_writes():
        LegacyCustomer.objects.bulk_create(
            [
                LegacyCustomer(
                    customer_name=W * settings.LEGACY_CUSTOMER_NAME_MAX_CHARS,
                    customer_email=W * settings.LEGACY_CUSTOMER_EMAIL_MAX_CHARS,
                    created_date=stamp,
                )
                for _ in range(most)
            ]
        )
    response = api_client(staff=True).get("/api/v1/legacy/customers/", {"page_size": most})
    assert response.status_code == 200 and len(response.json()["results"]) == most
    _assert_within("customers", response.content)


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS])
def test_the_events_list_at_its_largest() -> None:
    _, most, _ = limits.figures("events")
    data = _maximal_data()
    stamp = timezone.now().replace(microsecond=123_456) - dt.timedelta(minutes=1)
    AnalyticsEvent.objects.bulk_create(
        [
            AnalyticsEvent(
                event_type=W * settings.EVENT_TYPE_MAX_CHARS,
                session_id=W * settings.EVENT_SESSION_ID_MAX_CHARS,
                user_id=limits.BIG_ID,
                timestamp=stamp,
                data=data,
            )
            for _ in range(most)
        ]
    )
    response = api_client(staff=True).get("/api/v1/analytics/events/", {"page_size": most})
    assert response.status_code == 200 and len(response.json()["results"]) == most
    # Each event's data reads back within its bound, whatever the engine made of its numbers.
    assert json_size(response.json()["results"][0]["data"]) <= settings.EVENT_DATA_MAX_BYTES
    _assert_within("events", response.content)


@pytest.mark.django_db(transaction=True, databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS])
def test_the_new_user_report_at_its_largest() -> None:
    # The report reads each database from the fan-out's threads: committed rows only.
    _, most, _ = limits.figures("new_user_report")
    assert most < limits.MAX_REPORT_USERS  # 5,000 maximal users would weigh about 12.8 MB
    _maximal_users(most + 1)
    response = api_client(staff=True).get("/api/v1/reports/new-user-activity/")
    assert response.status_code == 200
    answer = response.json()
    assert len(answer["users"]) == most and answer["truncated"] is True
    _assert_within("new_user_report", response.content)
    wait_for_fanout_idle()


def test_the_contract_states_every_lists_figures() -> None:
    page = (Path(settings.BASE_DIR) / "docs" / "api.md").read_text()
    for name, path in LISTS.items():
        row, most, answer = limits.figures(name)
        assert answer <= EIGHT_MB
        line = f"| `{path}` | {most:,} | {row:,} | {answer:,} |"
        assert line in page, line
