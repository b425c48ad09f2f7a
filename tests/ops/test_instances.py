"""Two real instances of the service (two gunicorn masters behind nginx, scripts/proxy) sharing the
machine's Redis (CACHE_URL, database 13 unless SWITCHYARD_TEST_REDIS_DB says otherwise): one
throttle budget, one set of cached aggregates, and a read-your-writes pin set by one instance
honoured by the other. (The token memory shared across instances: tests of api/authentication.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core import aliases
from tests.factories import make_account, make_post, make_user
from tests.ops.instances import Instances, redis_url, server_timing_aliases

ALL = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY, aliases.CACHE]
pytestmark = [pytest.mark.real_engines, pytest.mark.django_db(transaction=True, databases=ALL)]


def test_two_instances_share_one_throttle_budget(tmp_path: Path) -> None:
    _, token = make_account()
    # Each instance is one worker process: with per-process budgets a client would get 2 x 6.
    with Instances(tmp_path, env={"CACHE_URL": redis_url(), "API_THROTTLE_RATE": "6/minute"}) as service:
        statuses = [service.request("GET", "/api/v1/posts/", instance=i % 2, token=token.key)[0] for i in range(8)]
        through_proxy, headers, body = service.request("GET", "/api/v1/posts/", token=token.key)
    assert statuses == [200] * 6 + [429, 429], service.tail()
    assert through_proxy == 429 and headers["Content-Type"] == "application/problem+json"
    assert body["status"] == 429 and "Retry-After" in headers


def test_two_instances_share_the_cached_aggregates(tmp_path: Path) -> None:
    _, token = make_account()
    user = make_user()
    make_post(author=user)
    url = f"/api/v1/users/{user.pk}/stats/"
    with Instances(tmp_path, env={"CACHE_URL": redis_url(), "USER_STATS_CACHE_SECONDS": "300"}) as service:
        first = service.request("GET", url, instance=0, token=token.key)
        second = service.request("GET", url, instance=1, token=token.key)
        # A post written through instance 1 drops the figure for every instance.
        created = service.request(
            "POST",
            "/api/v1/posts/",
            instance=1,
            token=token.key,
            body={"title": "shared", "content": "cache", "author_id": user.pk},
        )
        third = service.request("GET", url, instance=0, token=token.key)
        fourth = service.request("GET", url, instance=1, token=token.key)
    assert first[0] == second[0] == 200 and created[0] == 201, service.tail()
    assert first[2]["cached"] is False and first[2]["stats"]["post_count"] == 1
    # Computed by instance 0, answered from the shared cache by instance 1.
    assert second[2]["cached"] is True and second[2]["stats"]["post_count"] == 1
    assert third[2]["cached"] is False and third[2]["stats"]["post_count"] == 2
    assert fourth[2]["cached"] is True and fourth[2]["stats"]["post_count"] == 2


def test_a_pin_set_by_one_instance_is_honoured_by_the_other(tmp_path: Path) -> None:
    _, token = make_account()
    author = make_user()
    # default and users_db each get one replica alias (a mirror of the primary's database): the
    # alias that served a read is named in Server-Timing.
    with Instances(
        tmp_path, env={"CACHE_URL": redis_url(), "REPLICA_PIN_SECONDS": "30"}, mirror_replicas=True
    ) as service:
        unpinned = service.request("GET", "/api/v1/posts/", instance=1, token=token.key)
        created = service.request(
            "POST",
            "/api/v1/posts/",
            instance=0,
            token=token.key,
            body={"title": "pinned", "content": "read your writes", "author_id": author.pk},
        )
        pin = created[1].get("X-Switchyard-Pin", "")
        cookie = created[1].get("Set-Cookie", "")
        by_header = service.request(
            "GET", "/api/v1/posts/", instance=1, token=token.key, headers={"X-Switchyard-Pin": pin}
        )
        by_cookie = service.request(
            "GET", "/api/v1/posts/", instance=1, token=token.key, headers={"Cookie": cookie.split(";", 1)[0]}
        )
        through_proxy = service.request("GET", "/api/v1/posts/", token=token.key, headers={"X-Switchyard-Pin": pin})
    assert created[0] == 201, (created, service.tail())
    assert pin.startswith("default") and cookie.startswith("switchyard_pin=")
    assert unpinned[0] == 200 and "default_replica_1" in server_timing_aliases(unpinned[1])
    for answer in (by_header, by_cookie, through_proxy):
        assert answer[0] == 200
        served_by = server_timing_aliases(answer[1])
        assert aliases.DEFAULT in served_by and "default_replica_1" not in served_by, answer[1]
        assert [post["title"] for post in answer[2]["results"]][:1] == ["pinned"]
