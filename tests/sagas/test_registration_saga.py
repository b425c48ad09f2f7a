"""Registration saga: all three databases written, or nothing left on any of them.

Each step gets a real failure (a constraint violation, its database unreachable, its table locked
past the step's time limit), and after each the rows of every database are counted.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import UserProfile
from core.models import SagaRun, SagaStep
from core.services import saga
from core.services.registration import STEP_EVENT, STEP_PROFILE, STEP_USER, user_register
from core.users.models import User
from tests.factories import make_profile, make_user
from tests.sagas.faults import last_saga, refuse_inserts, row_counts, table_locked, unreachable

DBS = [
    aliases.DEFAULT,
    aliases.USERS,
    aliases.ANALYTICS,
    aliases.CACHE,
]  # cache_db: deleting a user drops its cached stats
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def statements(captured) -> list[str]:
    """The statements a capture saw, without transaction control (BEGIN/COMMIT/savepoints)."""
    return [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(TRANSACTION_CONTROL)]


def register(name: str = "ada"):
    return user_register(username=name, email=f"{name}@example.com", first_name="Ada", bio="Hi", avatar_url="")


def assert_nothing_left(before: dict[str, int], username: str) -> None:
    assert row_counts() == before
    assert not User.objects.filter(username=username).exists()
    assert not AnalyticsEvent.objects.filter(event_type="user_registered", user_id__isnull=True).exists()


def assert_compensated(failed_step: str, done_before: list[str]) -> None:
    run = last_saga()
    assert run.status == SagaRun.Status.COMPENSATED
    assert run.failed_step == failed_step
    statuses = {s.name: s.status for s in run.steps.all()}
    assert statuses == {
        **{name: SagaStep.Status.COMPENSATED for name in done_before},
        failed_step: SagaStep.Status.FAILED,
    }


@pytest.mark.django_db(databases=DBS)
def test_registration_writes_user_profile_and_event_and_logs_each_step():
    registration = register("grace")
    user = User.objects.get(username="grace")
    assert registration.user.pk == user.pk
    assert UserProfile.objects.get(user_id=user.pk).bio == "Hi"
    event = AnalyticsEvent.objects.get(user_id=user.pk)
    assert event.event_type == "user_registered"
    assert event.data["saga_id"] == registration.saga_id
    run = SagaRun.objects.get(pk=registration.saga_id)
    assert run.status == SagaRun.Status.COMPLETED and run.finished_at is not None
    steps = list(run.steps.values_list("name", "alias", "status"))
    assert steps == [
        (STEP_USER, aliases.USERS, "done"),
        (STEP_PROFILE, aliases.DEFAULT, "done"),
        (STEP_EVENT, aliases.ANALYTICS, "done"),
    ]
    assert run.steps.get(name=STEP_USER).payload == {"user_id": user.pk, "username": "grace"}


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_registration_query_count_per_alias(queries):
    with (
        queries(aliases.USERS) as on_users,
        queries(aliases.DEFAULT) as on_default,
        queries(aliases.ANALYTICS) as on_analytics,
    ):
        register("linus")
    pg = {q.connection.alias: int(q.connection.vendor == "postgresql") for q in (on_users, on_default, on_analytics)}
    # each step: its insert, plus set_config of the time limits on PostgreSQL; users_db also
    # answers the users service's uniqueness checks (username, email) before the saga starts
    # (+ the users fence's locking SELECT of the profile step, core.users.fence)
    assert len(statements(on_users)) == 2 + 1 + pg[aliases.USERS] + 1
    assert len(statements(on_analytics)) == 1 + pg[aliases.ANALYTICS]
    # default: the run; per step insert, heartbeat, payload, done; the profile (+ set_config); completed
    assert len(statements(on_default)) == 1 + 3 * 4 + 1 + pg[aliases.DEFAULT] + 1


@pytest.mark.django_db(databases=DBS)
def test_invalid_fields_are_refused_before_any_write():
    before = row_counts()
    runs = SagaRun.objects.count()
    with pytest.raises(ValidationError) as info:
        user_register(username="x" * 151, email="not-an-email", avatar_url="nope")
    assert set(info.value.error_dict) == {"username", "email", "profile.avatar_url"}
    assert row_counts() == before and SagaRun.objects.count() == runs


# --- a constraint violation at each step -------------------------------------------------------
@pytest.mark.django_db(databases=DBS, transaction=True)
def test_duplicate_username_fails_create_user_and_leaves_nothing():
    make_user(username="taken", email="first@example.com")
    before = row_counts()
    with pytest.raises(saga.SagaStepInvalid) as info:  # the users service's check, inside the step
        register("TAKEN")
    assert (info.value.step, info.value.alias) == (STEP_USER, aliases.USERS)
    assert info.value.errors == {
        "username": [("unique", "A user with this username, or one that looks the same, already exists.")]
    }
    assert row_counts() == before
    assert User.objects.filter(username="taken").count() == 1
    assert_compensated(STEP_USER, [])


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_duplicate_profile_fails_create_profile_and_undoes_the_user():
    seed = make_user()
    make_profile(user_id=seed.pk + 1)  # the id the registration's user is about to get
    before = row_counts()
    with pytest.raises(saga.SagaStepConflict) as info:
        register("ada")
    assert (info.value.step, info.value.alias, info.value.field) == (STEP_PROFILE, aliases.DEFAULT, "user_id")
    assert_nothing_left(before, "ada")
    assert UserProfile.objects.filter(user_id=seed.pk + 1).count() == 1  # the seeded one, untouched
    assert_compensated(STEP_PROFILE, [STEP_USER])


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_refused_event_fails_record_event_and_undoes_profile_and_user():
    before = row_counts()
    with refuse_inserts(aliases.ANALYTICS, "analytics_event", "event_type", "user_registered"):
        with pytest.raises(saga.SagaStepConflict) as info:
            register("ada")
    assert (info.value.step, info.value.alias) == (STEP_EVENT, aliases.ANALYTICS)
    assert_nothing_left(before, "ada")
    assert_compensated(STEP_EVENT, [STEP_USER, STEP_PROFILE])


# --- a database unreachable at each step -------------------------------------------------------
STEPS = [
    (STEP_USER, aliases.USERS, []),
    (STEP_PROFILE, aliases.DEFAULT, [STEP_USER]),
    (STEP_EVENT, aliases.ANALYTICS, [STEP_USER, STEP_PROFILE]),
]


@pytest.mark.django_db(databases=DBS, transaction=True)
@pytest.mark.parametrize("step,alias,done_before", STEPS, ids=[s[0] for s in STEPS])
def test_unreachable_database_at_each_step_leaves_nothing(step, alias, done_before):
    before = row_counts()
    outage = unreachable(alias)

    def go_down(point: str, name: str) -> None:
        if point == "before" and name == step:
            outage.__enter__()

    try:
        with saga.step_hook(go_down), pytest.raises(saga.SagaStepUnavailable) as info:
            register("ada")
    finally:
        outage.__exit__(None, None, None)
    assert (info.value.step, info.value.alias) == (step, alias)
    assert "unreachable" in str(info.value)
    assert_nothing_left(before, "ada")
    if alias != aliases.DEFAULT:
        assert_compensated(step, done_before)
    else:
        # The log itself was down while compensating: the user was still removed; the run stays
        # open and recover_sagas closes it (its compensations are idempotent).
        run = last_saga()
        assert run.status == SagaRun.Status.RUNNING
        outcomes = saga.recover(older_than=__import__("datetime").timedelta(0))
        assert [(o.saga_id, o.outcome) for o in outcomes] == [(run.pk, "compensated")]
        assert_nothing_left(before, "ada")


# --- a lock held past the step's time limit ----------------------------------------------------
TABLES = {aliases.USERS: "users_user", aliases.DEFAULT: "blog_userprofile", aliases.ANALYTICS: "analytics_event"}


@pytest.mark.real_engines
@pytest.mark.django_db(databases=DBS, transaction=True)
@pytest.mark.parametrize("step,alias,done_before", STEPS, ids=[s[0] for s in STEPS])
@override_settings(SAGA_STEP_TIMEOUT_MS=300)
def test_lock_held_past_step_time_limit_leaves_nothing(step, alias, done_before):
    before = row_counts()
    with table_locked(alias, TABLES[alias]), pytest.raises(saga.SagaStepUnavailable) as info:
        register("ada")
    assert (info.value.step, info.value.alias) == (step, alias)
    assert "timed out" in str(info.value)
    assert_nothing_left(before, "ada")
    assert_compensated(step, done_before)
