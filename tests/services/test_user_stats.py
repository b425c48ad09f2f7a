"""User stats through Django's cache, invalidated when the user or their posts change."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core import aliases
from core.blog.models import Post
from core.errors import NotFound
from core.services.user_stats import user_stats
from core.users.models import User
from tests.factories import make_event, make_post, make_user
from tests.services.faults import alias_down, wait_for_fanout_idle

DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE]
CACHE_GET, CACHE_SET = 1, 4
MISS = {aliases.CACHE: CACHE_GET + CACHE_SET, aliases.USERS: 1, aliases.DEFAULT: 1, aliases.ANALYTICS: 1}
HIT = {aliases.CACHE: CACHE_GET}

pytestmark = pytest.mark.usefixtures("clear_cache")


@pytest.fixture(autouse=True)
def _idle_pool():  # type: ignore[no-untyped-def]
    yield
    wait_for_fanout_idle()


@pytest.mark.parametrize("posts", [2, 20])
@pytest.mark.django_db(transaction=True, databases=DBS)
def test_miss_then_hit(posts: int, count_queries) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    for _ in range(posts):
        make_post(author=user)
    make_post(author=make_user())
    make_event(user_id=user.pk)
    make_event(user_id=user.pk, timestamp=timezone.now() - dt.timedelta(days=8))

    with count_queries() as miss_n:
        miss = user_stats(user_id=user.pk)
    with count_queries() as hit_n:
        hit = user_stats(user_id=user.pk)

    assert miss_n == MISS and hit_n == HIT
    assert miss["cached"] is False and hit["cached"] is True
    assert miss["user"] == {"id": user.pk, "username": user.username, "email": user.email}
    assert miss["stats"] == {"post_count": posts, "recent_activity": 1, "recent_activity_days": 7}
    assert hit["stats"] == miss["stats"] and hit["computed_at"] == miss["computed_at"]


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_new_deleted_and_moved_posts_invalidate() -> None:
    ada, bob = make_user(), make_user()
    first = make_post(author=ada)
    assert user_stats(user_id=ada.pk)["stats"]["post_count"] == 1
    assert user_stats(user_id=bob.pk)["stats"]["post_count"] == 0

    make_post(author=ada)
    after_new = user_stats(user_id=ada.pk)
    assert after_new["cached"] is False and after_new["stats"]["post_count"] == 2

    moved = Post.objects.get(pk=first.pk)
    moved.author_id = bob.pk
    moved.save()
    assert user_stats(user_id=ada.pk)["stats"]["post_count"] == 1
    assert user_stats(user_id=bob.pk)["stats"]["post_count"] == 1

    Post.objects.filter(author_id=bob.pk).delete()
    after_delete = user_stats(user_id=bob.pk)
    assert after_delete["cached"] is False and after_delete["stats"]["post_count"] == 0


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_changing_or_deleting_the_user_invalidates() -> None:
    user = make_user()
    assert user_stats(user_id=user.pk)["cached"] is False
    assert user_stats(user_id=user.pk)["cached"] is True
    user.username = "renamed"
    user.save()
    renamed = user_stats(user_id=user.pk)
    assert renamed["cached"] is False and renamed["user"]["username"] == "renamed"
    user_id = user.pk
    User.objects.filter(pk=user_id).delete()
    with pytest.raises(NotFound):
        user_stats(user_id=user_id)


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_degraded_answers_are_not_cached(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.ANALYTICS: 0.5}
    user = make_user()
    make_post(author=user)
    with alias_down(aliases.ANALYTICS):
        degraded = user_stats(user_id=user.pk)
    assert degraded["degraded"] == [aliases.ANALYTICS]
    assert degraded["stats"] == {"post_count": 1, "recent_activity": None, "recent_activity_days": 7}
    healthy = user_stats(user_id=user.pk)
    assert healthy["cached"] is False and healthy["stats"]["recent_activity"] == 0


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_unknown_user() -> None:
    with pytest.raises(NotFound):
        user_stats(user_id=424242)


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_a_cache_that_is_down_never_fails_the_write(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.CACHE: 0.5}
    user = make_user()
    with alias_down(aliases.CACHE):
        post = make_post(author=user)  # the invalidation fails within its budget; the post is saved
        post.title = "edited"
        post.save()
        Post.objects.filter(pk=post.pk).delete()
    assert not Post.objects.filter(author_id=user.pk).exists()
