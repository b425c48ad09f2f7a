"""Every answer written through an OutputSerializer's plan is what DRF's own Serializer writes.

Real rows from each engine (users and posts on PostgreSQL, events with JSON, customers on MariaDB),
as model instances and as ``.values()`` rows, in UTC and in another current time zone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework import serializers

from api.serializers.output import OutputSerializer
from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog import selectors as blog_selectors
from core.blog.models import Post
from core.legacy.models import LegacyCustomer
from core.users.models import User
from tests.factories import make_customer, make_event, make_post, make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY])


def _all_output_serializers() -> set[type[OutputSerializer]]:
    import api.urls  # noqa: F401 - imports every view, and with them every serializer of the API

    found, todo = set(), [OutputSerializer]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def drf_way(serializer: OutputSerializer, instance: Any) -> dict[str, Any]:
    """What DRF's ``Serializer.to_representation`` writes, then the subclass's ``finish``."""
    return serializer.finish(dict(serializers.Serializer.to_representation(serializer, instance)))


def _instances() -> dict[str, list[Any]]:
    author = make_user(username="zoë_🚀", first_name="Zoë", last_name="")
    posts = [make_post(author=author, title="Ünïcode ✓", content="x" * 300), make_post(author_id=987654321)]
    rows = list(blog_selectors.post_rows(Post.objects.order_by("id")))
    blog_selectors.post_rows_attach_authors(rows)
    make_event(event_type="click", user_id=author.pk, data={"nested": {"a": [1, 2.5, None, "é"]}, "b": True})
    make_event(event_type="view", user_id=None, session_id="", data={})
    make_customer(customer_name="Ada", customer_email="ada@example.com")
    return {
        "UserOutputSerializer": list(User.objects.all()),
        "RegistrationUserSerializer": list(User.objects.all()),
        "PostOutputSerializer": blog_selectors.posts_attach_authors(
            list(Post.objects.filter(pk__in=[p.pk for p in posts]))
        )
        + rows,
        "PostAuthorSerializer": [{"id": 1, "username": "a"}, {"id": 2, "username": ""}],
        "EventOutputSerializer": list(AnalyticsEvent.objects.all()),
        "LegacyCustomerOutputSerializer": list(LegacyCustomer.objects.all()),
    }


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_every_output_serializer_writes_what_drf_writes(zone):
    instances = _instances()
    classes = _all_output_serializers()
    assert {cls.__name__ for cls in classes} <= set(instances), "a new OutputSerializer needs instances here"
    with timezone.override(zone):
        for cls in classes:
            assert cls.plan() is not None, f"{cls.__name__}: a field the plan cannot write"
            objects = instances[cls.__name__]
            assert objects, cls.__name__
            one = cls()
            for instance in objects:
                assert one.to_representation(instance) == drf_way(one, instance), (cls.__name__, instance)
            many = cls(objects, many=True).data
            assert [dict(item) for item in many] == [drf_way(one, instance) for instance in objects]


def test_time_zone_and_values_outside_utc_are_written_as_drf_writes_them():
    class Stamp(OutputSerializer):
        at = serializers.DateTimeField()

    paris = dt.timezone(dt.timedelta(hours=1))
    values = [
        {"at": dt.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=dt.UTC)},
        {"at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=paris)},
        {"at": None},
    ]
    for zone in ("UTC", "America/New_York"):
        with timezone.override(zone):
            for value in values:
                assert Stamp(value).data == drf_way(Stamp(), value)
    with timezone.override("UTC"):
        assert Stamp(values[0]).data == {"at": "2026-01-02T03:04:05.000600Z"}


def test_a_field_the_plan_cannot_write_falls_back_to_drf_and_missing_attributes_skip_as_in_drf():
    class Computed(OutputSerializer):
        name = serializers.CharField()
        shout = serializers.SerializerMethodField()

        def get_shout(self, obj: Any) -> str:
            return self.context["suffix"] + obj["name"].upper()

    assert Computed.plan() is None
    assert Computed({"name": "ada"}, context={"suffix": "!"}).data == {"name": "ada", "shout": "!ADA"}

    class Optional(OutputSerializer):
        name = serializers.CharField(required=False)
        dotted = serializers.CharField(source="inner.value", required=False)

    assert Optional.plan() is not None
    for value in ({"name": "x", "inner": {"value": "y"}}, {"inner": {"value": "y"}}, {"name": "x"}):
        assert Optional(value).data == drf_way(Optional(), value)
