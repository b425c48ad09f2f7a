"""``Idempotency-Key`` on ``POST /posts/``, ``POST /analytics/events/`` and ``.../batch/``:
a replay writes nothing, another body with the same key is a 422."""

from __future__ import annotations

import pytest

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.models import IdempotencyRecord
from tests.api.conftest import assert_problem
from tests.factories import make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS])
EVENTS = "/api/v1/analytics/events/"


def _cases() -> list[tuple[str, dict, dict, object]]:
    author = make_user()
    return [
        (
            "/api/v1/posts/",
            {"title": "t", "content": "c", "author_id": author.pk},
            {"title": "other", "content": "c", "author_id": author.pk},
            Post,
        ),
        (EVENTS, {"event_type": "view", "user_id": 1}, {"event_type": "click", "user_id": 1}, AnalyticsEvent),
        (
            f"{EVENTS}batch/",
            {"events": [{"event_type": "a"}, {"event_type": "b"}]},
            {"events": [{"event_type": "a"}]},
            AnalyticsEvent,
        ),
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["posts", "events", "batch"])
def test_replay_writes_once_and_another_body_is_422(client_, queries, index: int) -> None:
    url, body, other, model = _cases()[index]
    first = client_.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{index}")
    assert first.status_code == 201, first.content
    written = model.objects.count()
    assert written >= 1
    with queries(aliases.USERS) as on_users, queries(aliases.ANALYTICS) as on_analytics:
        again = client_.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{index}")
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert len(on_users) == 0 and len(on_analytics) == 0  # nothing ran
    assert model.objects.count() == written
    mismatch = client_.post(url, other, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{index}")
    body_422 = assert_problem(mismatch, 422, "Idempotency-Key")
    assert body_422["errors"][0]["code"] == "mismatch"
    assert model.objects.count() == written


def test_a_rejected_event_does_not_use_up_the_key(client_) -> None:
    assert_problem(
        client_.post(EVENTS, {"event_type": ""}, format="json", HTTP_IDEMPOTENCY_KEY="e-1"), 400, "event_type"
    )
    assert not IdempotencyRecord.objects.exists()
    assert client_.post(EVENTS, {"event_type": "view"}, format="json", HTTP_IDEMPOTENCY_KEY="e-1").status_code == 201


def test_schema_documents_the_header_on_each_create() -> None:
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path in ("/api/v1/posts/", EVENTS, f"{EVENTS}batch/"):
        operation = paths[path]["post"]
        assert "Idempotency-Key" in [p["name"] for p in operation.get("parameters", [])], path
        assert {"409", "422"} <= set(operation["responses"]), path
