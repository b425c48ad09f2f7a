"""No cross-database orphans: writes that name a user racing that user's deletion (issue 11).

Each test fixes one interleaving with a pause point (a ``pre_save`` receiver or a saga step hook)
and real connections per thread, so it fails the same way every time on code without the fence.
"""

from __future__ import annotations

import threading

import pytest
from django.db.models.signals import pre_save
from django.test import override_settings

from core.analytics import services as analytics_services
from core.analytics.models import AnalyticsEvent
from core.blog import services as blog_services
from core.blog.models import Post, UserProfile
from core.errors import FieldErrors, NotFound
from core.models import SagaRun
from core.services import saga
from core.services.user_deletion import STEP_CONTENT, STEP_USER, user_delete_everywhere
from core.users.models import User
from tests.factories import make_post, make_user
from tests.integrity.races import Pause, Runner, settle

DBS = ["default", "users_db", "analytics_db", "cache_db"]


def orphans() -> dict[str, list[int]]:
    users = set(User.objects.values_list("pk", flat=True))
    return {
        "posts": [p for p, a in Post.objects.values_list("pk", "author_id") if a not in users],
        "profiles": [p for p, u in UserProfile.objects.values_list("pk", "user_id") if u not in users],
        "events": [
            e for e, u in AnalyticsEvent.objects.exclude(user_id=None).values_list("pk", "user_id") if u not in users
        ],
    }


NONE = {"posts": [], "profiles": [], "events": []}


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_a_post_written_while_the_deletion_starts_is_deleted_with_the_user() -> None:
    """Writer checked the author and is about to INSERT; the deletion starts now. The deletion must
    wait for the post to commit and then remove it (without the fence it ran to the end and the
    post was inserted after, an orphan)."""
    user = make_user()
    pause = Pause()

    def hold(sender, instance, **kwargs):  # type: ignore[no-untyped-def]
        if instance.author_id == user.pk and instance.pk is None:
            pause()

    pre_save.connect(hold, sender=Post)
    try:
        writer = Runner(lambda: blog_services.post_create(author_id=user.pk, title="racing"))
        writer.start()
        pause.wait()
        deleter = Runner(lambda: user_delete_everywhere(user_id=user.pk))
        deleter.start()
        # Either the deletion is blocked by the writer's fence, or (no fence) it has finished.
        settle(deleter)
        pause.go.set()
        writer.join(20)
        deleter.join(20)
    finally:
        pre_save.disconnect(hold, sender=Post)
    assert writer.error is None and deleter.error is None, (writer.error, deleter.error)
    assert not User.objects.filter(pk=user.pk).exists()
    assert orphans() == NONE


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_a_post_written_after_the_deletion_began_is_refused() -> None:
    """The deletion has removed the user's posts and not yet the user; a post naming them now is a
    400 on author_id, never a 201 for a row that outlives its author."""
    user = make_user()
    make_post(author=user)
    pause = Pause()

    def hook(point: str, step: str) -> None:
        if (point, step) == ("after", STEP_CONTENT):
            pause()

    def delete() -> dict:
        with saga.step_hook(hook):
            return user_delete_everywhere(user_id=user.pk)

    deleter = Runner(delete)
    deleter.start()
    pause.wait()
    try:
        with pytest.raises(FieldErrors) as info:
            blog_services.post_create(author_id=user.pk, title="too late")
    finally:
        pause.go.set()
        deleter.join(20)
    assert info.value.errors["author_id"][0][0] == "does_not_exist"
    assert deleter.error is None and deleter.result["posts"] == 1
    assert orphans() == NONE


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_a_post_moved_to_an_author_being_deleted_is_refused() -> None:
    """An update setting author_id to a user whose deletion began is refused too."""
    target, other = make_user(), make_user()
    post = make_post(author=other)
    pause = Pause()

    def hook(point: str, step: str) -> None:
        if (point, step) == ("after", STEP_CONTENT):
            pause()

    def delete() -> dict:
        with saga.step_hook(hook):
            return user_delete_everywhere(user_id=target.pk)

    deleter = Runner(delete)
    deleter.start()
    pause.wait()
    try:
        with pytest.raises(FieldErrors):
            blog_services.post_update(post=Post.objects.get(pk=post.pk), data={"author_id": target.pk})
    finally:
        pause.go.set()
        deleter.join(20)
    assert deleter.error is None
    assert Post.objects.get(pk=post.pk).author_id == other.pk
    assert orphans() == NONE


@pytest.mark.django_db(databases=DBS, transaction=True)
@override_settings(USER_DELETION_ANALYTICS="delete")
def test_in_delete_mode_an_event_written_after_the_deletion_began_is_refused() -> None:
    user = make_user()
    pause = Pause()

    def hook(point: str, step: str) -> None:
        if (point, step) == ("after", "analytics"):
            pause()

    def delete() -> dict:
        with saga.step_hook(hook):
            return user_delete_everywhere(user_id=user.pk)

    deleter = Runner(delete)
    deleter.start()
    pause.wait()
    try:
        with pytest.raises(FieldErrors):
            analytics_services.event_create(event_type="click", user_id=user.pk)
        with pytest.raises(FieldErrors) as batch:
            analytics_services.event_batch_create(events=[{"event_type": "a"}, {"event_type": "b", "user_id": user.pk}])
    finally:
        pause.go.set()
        deleter.join(20)
    assert set(batch.value.errors) == {"events[1].user_id"}
    assert deleter.error is None
    assert orphans() == NONE


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_a_registration_whose_user_is_deleted_midway_leaves_no_profile() -> None:
    """Registration created the user; a deletion of that user runs before the profile step. The
    profile step is refused (the registration is undone), no profile names the deleted user."""
    from core.services.registration import STEP_USER as REG_USER
    from core.services.registration import user_register

    pause = Pause()
    created: dict[str, int] = {}

    def hook(point: str, step: str) -> None:
        if (point, step) == ("after", REG_USER):
            pause()

    def register():  # type: ignore[no-untyped-def]
        with saga.step_hook(hook):
            return user_register(username="racer", email="racer@example.com", bio="hi", avatar_url="")

    registrar = Runner(register)
    registrar.start()
    pause.wait()
    created["id"] = User.objects.get(username="racer").pk
    user_delete_everywhere(user_id=created["id"])
    pause.go.set()
    registrar.join(20)
    assert isinstance(registrar.error, saga.SagaStepFailed), registrar.error
    assert orphans() == NONE


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_concurrent_deletions_of_one_user_run_one_saga() -> None:
    """A second deletion arriving while the first runs is a 404 and starts no saga of its own."""
    user = make_user()
    make_post(author=user)
    pause = Pause()

    def hook(point: str, step: str) -> None:
        if (point, step) == ("before", STEP_USER):
            pause()

    def first() -> dict:
        with saga.step_hook(hook):
            return user_delete_everywhere(user_id=user.pk)

    runner = Runner(first)
    runner.start()
    pause.wait()
    try:
        with pytest.raises(NotFound):
            user_delete_everywhere(user_id=user.pk)
    finally:
        pause.go.set()
        runner.join(20)
    assert runner.error is None
    assert list(SagaRun.objects.filter(name="user_delete").values_list("status", flat=True)) == ["completed"]


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_many_parallel_deletions_complete_one_saga() -> None:
    user = make_user()
    barrier = threading.Barrier(8)

    def delete() -> dict:
        barrier.wait(10)
        return user_delete_everywhere(user_id=user.pk)

    runners = [Runner(delete) for _ in range(8)]
    for r in runners:
        r.start()
    for r in runners:
        r.join(30)
    assert sum(r.error is None for r in runners) == 1
    assert all(isinstance(r.error, NotFound) for r in runners if r.error is not None), [r.error for r in runners]
    assert SagaRun.objects.filter(name="user_delete", status="completed").count() == 1
    # Runs that got past the first check end at the claim (mark_deleting) having removed nothing.
    for run in SagaRun.objects.filter(name="user_delete").exclude(status="completed"):
        assert (run.failed_step, run.status) == ("mark_deleting", "compensated")


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_sync_racing_a_deletion_leaves_no_cache_entry_of_the_deleted_user() -> None:
    """sync_users read the user, then (paused before its writes) the user is deleted: the sync's
    cache entry and event for that user are skipped (without the fence: an entry of a deleted user)."""
    from django.db import connections

    from core.cache.models import CacheEntry
    from core.services.sync import users_sync

    doomed, kept = make_user(), make_user()
    pause = Pause()

    def before_post_counts(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "blog_post" in sql and not pause.reached.is_set():
            pause()
        return execute(sql, params, many, context)

    def sync():  # type: ignore[no-untyped-def]
        with connections["default"].execute_wrapper(before_post_counts):
            return users_sync(ids=[doomed.pk, kept.pk])

    syncer = Runner(sync)
    syncer.start()
    pause.wait()
    user_delete_everywhere(user_id=doomed.pk)
    pause.go.set()
    syncer.join(20)
    assert syncer.error is None, syncer.error
    keys = set(CacheEntry.objects.values_list("key", flat=True))
    assert keys == {f"user:{kept.pk}:summary"}
    assert not AnalyticsEvent.objects.filter(user_id=doomed.pk).exists()
