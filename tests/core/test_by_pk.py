"""``Model.objects.by_pk(pk)``: the one-object read of every detail endpoint (core/querysets.py).

On each engine it gives what ``get(pk=...)`` gives, field by field (JSON, datetimes, nulls), in one
statement on the alias the routers pick, and None where ``get`` raises DoesNotExist.
"""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.legacy.models import LegacyCustomer
from core.users.models import User
from tests.factories import make_customer, make_event, make_post, make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY])


def _fields(instance):
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.mark.parametrize(
    ("model", "alias", "make"),
    [
        (User, aliases.USERS, lambda: make_user(username="zoë", first_name="")),
        (Post, aliases.DEFAULT, lambda: make_post(title="Ünïcode ✓", content="")),
        (AnalyticsEvent, aliases.ANALYTICS, lambda: make_event(user_id=None, data={"a": [1, None, "é"], "b": {}})),
        (LegacyCustomer, aliases.LEGACY, lambda: make_customer(customer_name="Ada")),
    ],
    ids=["users_db", "default", "analytics_db", "legacy_db"],
)
def test_by_pk_reads_what_get_reads_in_one_statement(model, alias, make):
    made = make()
    with CaptureQueriesContext(connections[alias]) as ran:
        found = model.objects.by_pk(made.pk)
    assert len(ran) == 1
    assert type(found) is model and found._state.db == alias and not found._state.adding
    assert _fields(found) == _fields(model.objects.get(pk=made.pk))
    assert model.objects.by_pk(str(made.pk)) is not None  # a key as the URL gives it
    assert model.objects.by_pk(10**12) is None
    assert model.objects.by_pk(2**70) is None  # beyond the column's range: no query error
    assert model.objects.by_pk("not-a-key") is None
    assert model.objects.primary().by_pk(made.pk).pk == made.pk


def test_by_pk_refuses_a_filtered_queryset():
    user = make_user()
    with pytest.raises(TypeError):
        User.objects.filter(username="someone-else").by_pk(user.pk)
