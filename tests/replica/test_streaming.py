"""Read routing against a real PostgreSQL streaming replica (scripts/replica, port 5433).

The replica aliases (``default_replica_1``, ``users_db_replica_1``) point at the standby with
``REPLICA_TEST_MIRROR=1``, so they read the primary's test database as streamed by PostgreSQL.
Lag is made real with ``pg_wal_replay_pause()``; an outage is made real by stopping the cluster.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections, router
from django.test import Client, override_settings

from core import aliases
from core.blog.models import Post
from core.users.models import User
from routers import health, state
from tests.factories import make_post, make_user

pytestmark = [pytest.mark.replica, pytest.mark.real_engines]

ROOT = Path(__file__).resolve().parents[2]
USERS_REPLICA = aliases.replica_alias(aliases.USERS, 1)
DEFAULT_REPLICA = aliases.replica_alias(aliases.DEFAULT, 1)
# cache_db too: writes of users invalidate cached figures there.
DBS = [aliases.DEFAULT, aliases.USERS, USERS_REPLICA, aliases.CACHE]


def replica_script(command: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "replica"), command], check=True, capture_output=True, timeout=120)


def eventually(predicate: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def fresh_request() -> None:
    """What the middleware does at a request boundary: new routing state, connections returned."""
    state.reset()
    for alias in (aliases.USERS, USERS_REPLICA):
        connections[alias].close()


def visible_on_replica(pk: int) -> bool:
    with connections[USERS_REPLICA].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM users_user WHERE id = %s", [pk])
        return cursor.fetchone()[0] == 1


@pytest.fixture
def paused_replay(replica_sql) -> Iterator[None]:  # type: ignore[no-untyped-def]
    # Let the replica replay everything written so far before pausing it: pausing in the middle
    # of a replayed TRUNCATE (the previous test's flush) would leave the standby holding that
    # table's ACCESS EXCLUSIVE lock, and every read of it would wait until replay resumes.
    target = replica_sql(aliases.USERS, "SELECT pg_current_wal_lsn()::text")
    assert eventually(
        lambda: replica_sql(USERS_REPLICA, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)) is True
    ), "the replica did not catch up before the pause"
    replica_sql(USERS_REPLICA, "SELECT pg_wal_replay_pause()")
    assert eventually(lambda: replica_sql(USERS_REPLICA, "SELECT pg_get_wal_replay_pause_state()") == "paused")
    try:
        yield
    finally:
        replica_sql(USERS_REPLICA, "SELECT pg_wal_replay_resume()")


@pytest.fixture
def replica_running() -> Iterator[None]:
    """Make sure the replica runs again after a test that stops it."""
    yield
    replica_script("start")
    for alias in (USERS_REPLICA, DEFAULT_REPLICA):
        connections[alias].close()
    health.clear()


def test_replicas_are_configured_for_the_primaries() -> None:
    assert USERS_REPLICA in settings.DATABASES
    assert DEFAULT_REPLICA in settings.DATABASES
    assert settings.DATABASES[USERS_REPLICA]["PORT"] == 5433
    assert settings.DATABASES[USERS_REPLICA]["NAME"] == settings.DATABASES[aliases.USERS]["NAME"]


@pytest.mark.django_db(databases=[*DBS, DEFAULT_REPLICA], transaction=True)
def test_replica_aliases_are_real_standbys_and_primaries_are_not(replica_sql) -> None:  # type: ignore[no-untyped-def]
    assert replica_sql(USERS_REPLICA, "SELECT pg_is_in_recovery()") is True
    assert replica_sql(DEFAULT_REPLICA, "SELECT pg_is_in_recovery()") is True
    assert replica_sql(aliases.USERS, "SELECT pg_is_in_recovery()") is False
    assert replica_sql(USERS_REPLICA, "SELECT current_setting('port')") == "5433"
    assert replica_sql(aliases.USERS, "SELECT current_setting('port')") == "5432"


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_reads_land_on_the_replica_and_see_rows_committed_on_the_primary(queries) -> None:  # type: ignore[no-untyped-def]
    with queries(aliases.USERS) as on_primary, queries(USERS_REPLICA) as on_replica:
        user = make_user()
    assert (len(on_primary), len(on_replica)) == (1, 0)

    fresh_request()
    assert router.db_for_read(User) == USERS_REPLICA
    with connections[USERS_REPLICA].cursor() as cursor:  # the alias the router picked is in recovery
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is True

    def seen() -> bool:
        fresh_request()
        with queries(aliases.USERS) as on_primary, queries(USERS_REPLICA) as on_replica:
            found = User.objects.filter(pk=user.pk).exists()
        assert (len(on_primary), len(on_replica)) == (0, 1)
        return found

    assert eventually(seen)


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_writes_never_reach_the_replica(queries) -> None:  # type: ignore[no-untyped-def]
    with queries(aliases.USERS) as on_primary, queries(USERS_REPLICA) as on_replica:
        user = make_user()
        User.objects.filter(pk=user.pk).update(first_name="Grace")
        user.last_name = "Hopper"
        user.save(update_fields=["last_name"])
        User.objects.filter(pk=user.pk).delete()
    assert len(on_replica) == 0
    # Every statement ran on the primary: the insert, the two updates and the delete (plus
    # whatever reads the delete needs inside its transaction, which depends on signal receivers).
    verbs = [query["sql"].split()[0].upper() for query in on_primary.captured_queries]
    assert [verb for verb in verbs if verb in {"INSERT", "UPDATE", "DELETE"}] == [
        "INSERT",
        "UPDATE",
        "UPDATE",
        "DELETE",
    ]
    assert router.db_for_write(User) == aliases.USERS
    assert not router.allow_migrate(USERS_REPLICA, "users")
    # And the standby itself would refuse: it is read-only.
    with pytest.raises(Exception, match="read-only"), connections[USERS_REPLICA].cursor() as cursor:
        cursor.execute(
            "INSERT INTO users_user (username, email, first_name, last_name, created_at, updated_at)"
            " VALUES ('x', 'x@example.com', '', '', now(), now())"
        )


@pytest.mark.django_db(databases=[aliases.DEFAULT, DEFAULT_REPLICA, *DBS], transaction=True)
def test_writes_on_default_go_to_its_primary(queries) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    with queries(aliases.DEFAULT) as on_primary, queries(DEFAULT_REPLICA) as on_replica:
        make_post(author_id=user.pk)
    assert (len(on_primary), len(on_replica)) == (1, 0)
    fresh_request()
    assert router.db_for_read(Post) == DEFAULT_REPLICA


@override_settings(ROOT_URLCONF="tests.replica.urls")
@pytest.mark.django_db(databases=DBS, transaction=True)
def test_read_your_writes_while_replay_is_paused(paused_replay) -> None:  # type: ignore[no-untyped-def]
    writer = Client()
    created = writer.post("/replica-test/users/")
    assert created.status_code == 201
    body = created.json()
    # Same request: the read after the write went to the primary and saw the row.
    assert body["read_back"] is True
    assert body["read_on"] == [aliases.USERS]
    assert settings.REPLICA_PIN_COOKIE in created.cookies
    pk = body["id"]

    # The lag is real: the replica has not replayed the insert.
    time.sleep(0.3)
    assert not visible_on_replica(pk)
    stranger = Client().get(f"/replica-test/users/{pk}/").json()
    assert stranger == {"found": False, "touched": [USERS_REPLICA]}

    # The writer's next request carries the pin cookie: its read goes to the primary.
    again = writer.get(f"/replica-test/users/{pk}/").json()
    assert again == {"found": True, "touched": [aliases.USERS]}

    # A pin header works for clients without cookies.
    pin = created[settings.REPLICA_PIN_HEADER]
    by_header = Client().get(f"/replica-test/users/{pk}/", headers={settings.REPLICA_PIN_HEADER: pin}).json()
    assert by_header == {"found": True, "touched": [aliases.USERS]}


@override_settings(ROOT_URLCONF="tests.replica.urls", REPLICA_PIN_SECONDS=0.5)
@pytest.mark.django_db(databases=DBS, transaction=True)
def test_pin_expires_and_reads_return_to_the_replica(replica_sql) -> None:  # type: ignore[no-untyped-def]
    writer = Client()
    pk = writer.post("/replica-test/users/").json()["id"]
    assert eventually(lambda: visible_on_replica(pk))
    time.sleep(0.6)
    after = writer.get(f"/replica-test/users/{pk}/").json()
    assert after == {"found": True, "touched": [USERS_REPLICA]}


@override_settings(ROOT_URLCONF="tests.replica.urls", REPLICA_HEALTH_WINDOW_SECONDS=2.0)
@pytest.mark.django_db(databases=DBS, transaction=True)
def test_a_stopped_replica_falls_back_to_the_primary_and_is_tried_again_after_the_window(
    replica_running,  # type: ignore[no-untyped-def]
) -> None:
    name = f"fb-{uuid.uuid4().hex[:8]}"
    user = User.objects.create(username=name, email=f"{name}@example.com")
    assert eventually(lambda: visible_on_replica(user.pk))
    fresh_request()
    assert Client().get(f"/replica-test/users/{user.pk}/").json()["touched"] == [USERS_REPLICA]

    connections[USERS_REPLICA].close()
    replica_script("stop")

    # Reads fall back to the primary; no 5xx.
    response = Client().get(f"/replica-test/users/{user.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["found"] is True
    # Answered by the primary; the failed attempt on the replica is timed too (Server-Timing).
    assert body["touched"] in ([aliases.USERS], [aliases.USERS, USERS_REPLICA])
    assert health.recently_failed(USERS_REPLICA)
    failed_at = health._failed_at[USERS_REPLICA]

    # Within the window the replica is not tried again (its failure time does not move).
    assert Client().get(f"/replica-test/users/{user.pk}/").json()["touched"] == [aliases.USERS]
    assert health._failed_at[USERS_REPLICA] == failed_at

    # Writes keep going to the primary while the replica is down.
    created = Client().post("/replica-test/users/")
    assert created.status_code == 201
    assert created.json()["touched"] == [aliases.USERS]

    # After the window, still down: tried again on a fresh connection, refused at once (the pool,
    # whose server is gone, would make the request wait DB_POOL_TIMEOUT), marked failed again.
    time.sleep(max(0.0, 2.05 - (time.monotonic() - failed_at)))
    started = time.monotonic()
    retried = Client().get(f"/replica-test/users/{user.pk}/").json()
    assert retried["found"] is True
    assert retried["touched"] == [aliases.USERS, USERS_REPLICA]  # the replica was tried again, and failed
    assert time.monotonic() - started < 1.0
    assert health._failed_at[USERS_REPLICA] > failed_at
    failed_at = health._failed_at[USERS_REPLICA]

    replica_script("start")
    # Still inside the window: the primary keeps serving reads even though the replica is back.
    if time.monotonic() - failed_at < 1.5:
        assert Client().get(f"/replica-test/users/{user.pk}/").json()["touched"] == [aliases.USERS]
    time.sleep(max(0.0, 2.05 - (time.monotonic() - failed_at)))
    assert not health.recently_failed(USERS_REPLICA)
    back = Client().get(f"/replica-test/users/{user.pk}/").json()
    assert back == {"found": True, "touched": [USERS_REPLICA]}


@override_settings(ROOT_URLCONF="tests.replica.urls")
@pytest.mark.django_db(databases=DBS, transaction=True)
def test_a_replica_lost_in_the_middle_of_a_read_is_answered_again_from_the_primary() -> None:
    from tests.replica import urls

    name = f"cut-{uuid.uuid4().hex[:8]}"
    user = User.objects.create(username=name, email=f"{name}@example.com")
    assert eventually(lambda: visible_on_replica(user.pk))
    fresh_request()
    urls.ATTEMPTS.clear()
    response = Client(raise_request_exception=False).get(f"/replica-test/users/{user.pk}/cut/")
    assert response.status_code == 200
    assert response.json() == {"found": True, "touched": [aliases.USERS]}
    # The first attempt read on the replica and lost it; the second went to the primary.
    assert urls.ATTEMPTS == [USERS_REPLICA, aliases.USERS]
    assert health.recently_failed(USERS_REPLICA)


@override_settings(ROOT_URLCONF="tests.replica.urls")
@pytest.mark.django_db(databases=DBS, transaction=True)
def test_a_write_request_that_lost_its_replica_before_writing_is_answered_once() -> None:
    from tests.replica import urls

    name = f"cw-{uuid.uuid4().hex[:8]}"
    user = User.objects.create(username=name, email=f"{name}@example.com")
    assert eventually(lambda: visible_on_replica(user.pk))
    fresh_request()
    urls.ATTEMPTS.clear()
    new_name = f"new-{uuid.uuid4().hex[:8]}"
    response = Client(raise_request_exception=False).post(
        f"/replica-test/users/{user.pk}/cut-then-write/", {"username": new_name}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert urls.ATTEMPTS == [USERS_REPLICA, aliases.USERS]
    assert User.objects.filter(username=new_name).count() == 1


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_probe_opens_a_fresh_connection_and_marks_a_dead_replica(replica_running) -> None:  # type: ignore[no-untyped-def]
    assert health.probe(USERS_REPLICA) is True
    assert not health.recently_failed(USERS_REPLICA)
    connections[USERS_REPLICA].close()
    replica_script("stop")
    assert health.probe(USERS_REPLICA) is False
    assert health.recently_failed(USERS_REPLICA)


@pytest.mark.django_db(databases=[*DBS, DEFAULT_REPLICA], transaction=True)
def test_the_answer_to_a_post_write_reads_its_author_on_the_primary(queries) -> None:  # type: ignore[no-untyped-def]
    """Creating or changing a post checks its author on the primary, and the answer names the
    author from there too: a replica that fails (or lags) after the post is stored must not turn
    the write's answer into a 503, inviting a retry that stores a second post."""
    from tests.factories import api_client

    name = f"pw-{uuid.uuid4().hex[:8]}"
    author = User.objects.create(username=name, email=f"{name}@example.com")
    fresh_request()
    client = api_client()
    with queries(aliases.USERS) as on_primary, queries(USERS_REPLICA) as on_replica:
        created = client.post("/api/v1/posts/", {"author_id": author.pk, "title": "t"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["author"] == {"id": author.pk, "username": name}
    assert len(on_replica) == 0 and len(on_primary) >= 2  # the check and the answer's author
    fresh_request()
    with queries(USERS_REPLICA) as on_replica:
        changed = client.patch(f"/api/v1/posts/{created.json()['id']}/", {"title": "u"}, format="json")
    assert changed.status_code == 200 and changed.json()["author"]["username"] == name
    assert len(on_replica) == 0


def _terminate_soon(alias: str, marker: str) -> threading.Thread:
    """A thread that ends, on ``alias``'s server, the session running a statement with ``marker``."""
    import psycopg

    db = settings.DATABASES[alias]

    def run() -> None:
        with psycopg.connect(
            host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"], autocommit=True
        ) as killer:
            for _ in range(200):
                gone = killer.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE query LIKE %s AND pid <> pg_backend_pid()",
                    [f"%{marker}%"],
                ).fetchone()[0]
                if gone:
                    return
                time.sleep(0.02)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_a_replica_lost_under_a_fan_out_part_is_noted_for_an_answer_from_the_primary() -> None:
    """A fan-out part reading the users replica when the replica goes away mid-statement: the part
    is degraded, and the replica is marked failed and noted in the request's routing state (the
    routing middleware answers a safe request again from the primary)."""
    from core.services.fanout import fan_out

    def sleeping(alias: str | None) -> list:
        assert alias == USERS_REPLICA
        with connections[alias].cursor() as cursor:
            cursor.execute(f"SELECT pg_sleep(3), '{marker}'")
            return cursor.fetchall()

    marker = f"part-{uuid.uuid4().hex[:8]}"
    fresh_request()
    with state.isolated() as current:
        killer = _terminate_soon(USERS_REPLICA, marker)
        try:
            got = fan_out({aliases.USERS: sleeping})
        finally:
            killer.join()
        assert got.degraded == [aliases.USERS]
        assert USERS_REPLICA in current.failed_replicas
    assert health.recently_failed(USERS_REPLICA)


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_replica_lag_is_read_at_scrape_time_from_the_streaming_replica() -> None:
    """The metrics' lag of each PostgreSQL replica: a number of seconds, 0 once it has replayed a
    write it received (the stand-in replicas of other passes are not standbys: left out)."""
    from api.metrics import replica_lags

    user = make_user()
    assert eventually(lambda: visible_on_replica(user.pk))
    assert eventually(lambda: replica_lags().get(USERS_REPLICA) == 0.0)
    assert all(seconds >= 0 for seconds in replica_lags().values())
