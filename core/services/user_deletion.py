"""Deleting a user everywhere, as a saga (:mod:`core.services.saga`).

Steps, dependents first and the user last, so that no step boundary ever leaves a post, profile or
event pointing at a user that no longer exists:

0. ``mark_deleting`` (users_db): the user row is locked ``FOR UPDATE`` and its ``deleting_saga_id``
   set to this run. This is the fence (:mod:`core.users.fence`): it waits for every write naming
   the user that is in flight to commit, and every later one is refused (400, as for an unknown
   user). It is also the claim: a user already marked by another run is a 404, so concurrent
   deletions of one user run one saga. Undone (the mark cleared) when a later step fails.
1. ``clear_cache`` (cache_db): cache entries naming the user. **Key convention:** every cache
   entry about one user has a key starting ``user:<id>:`` (``user:42:summary`` written by
   ``sync_users``, ``user:42:stats``, ...); this step deletes ``user:<id>:*``. Cache entries are
   derived data: they are not restored when a later step fails (they are rebuilt on demand).
2. ``delete_content`` (default): the user's posts and profile, in one transaction. The rows are
   kept in the step's payload so that a failure later restores them (same ids and timestamps).
3. ``analytics`` (analytics_db): the user's events anonymised (``user_id`` set to NULL) or deleted,
   per ``USER_DELETION_ANALYTICS`` (``anonymise`` by default); restored on failure.
4. ``delete_user`` (users_db): the user.

A run interrupted by a dying process is *finished* by ``manage.py recover_sagas`` (the user asked to
be deleted); if finishing fails, the steps done are undone as above.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.errors import NotFound
from core.services import cached, saga
from core.users.models import User

SAGA_NAME = "user_delete"
STEP_MARK = "mark_deleting"
STEP_CACHE = "clear_cache"
STEP_CONTENT = "delete_content"
STEP_ANALYTICS = "analytics"
STEP_USER = "delete_user"
CHUNK = 5000


def cache_key_prefix(user_id: int) -> str:
    """Every cache entry about user ``user_id`` has a key starting with this (see the module docstring)."""
    return f"user:{int(user_id)}:"


def _rows(queryset: Any, fields: list[str]) -> list[dict[str, Any]]:
    return [dict(row) for row in queryset.values("pk", *fields)]


def _merge(previous: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows removed by an earlier attempt of the same step stay in the payload (recovery re-runs)."""
    seen = {row["pk"] for row in new}
    return new + [row for row in previous if row["pk"] not in seen]


def _restore(model: Any, rows: list[dict[str, Any]], stamp_fields: tuple[str, ...]) -> None:
    """Insert ``rows`` back with their ids; auto timestamps are written back as they were."""
    if not rows:
        return
    objects = [model(**{("id" if k == "pk" else k): v for k, v in row.items()}) for row in rows]
    model.objects.bulk_create(objects, batch_size=CHUNK, ignore_conflicts=True)
    if stamp_fields:
        # bulk_create stamped auto_now/auto_now_add fields with "now": put the originals back.
        for obj, row in zip(objects, rows):
            for name in stamp_fields:
                setattr(obj, name, row[name])
        model.objects.bulk_update(objects, list(stamp_fields), batch_size=CHUNK)


def _chunks(items: list[Any]) -> Any:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# --- steps -------------------------------------------------------------------------------------
#: ``ctx.objects`` key of an optional callable ``(user) -> None`` run on the locked user row by
#: the mark step (the API's ``If-Match`` check); it raises to refuse the deletion.
PRECONDITION = "precondition"


def _mark_deleting(ctx: saga.StepContext) -> dict[str, Any]:
    user_id = ctx.context["user_id"]
    # FOR UPDATE conflicts with the fence's FOR KEY SHARE: this waits for fenced writes in flight.
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None or user.deleting_saga_id not in (None, ctx.saga_id):
        # Gone, or claimed by another deletion run: that run deletes the user (one saga per user).
        raise NotFound("user", user_id)
    precondition = ctx.objects.get(PRECONDITION)
    if precondition is not None and user.deleting_saga_id is None:
        precondition(user)
    User.objects.filter(pk=user_id).update(deleting_saga_id=ctx.saga_id)
    return {"user_id": user_id, "saga_id": ctx.saga_id}


def _unmark(payload: dict[str, Any], context: dict[str, Any]) -> None:
    User.objects.filter(pk=payload["user_id"], deleting_saga_id=payload["saga_id"]).update(deleting_saga_id=None)


def _clear_cache(ctx: saga.StepContext) -> dict[str, Any]:
    prefix = cache_key_prefix(ctx.context["user_id"])
    deleted, _ = CacheEntry.objects.filter(key__startswith=prefix).delete()
    # The aggregates cached in Django's cache (Redis or the cache table) under the same convention.
    cached.delete_quietly(cached.user_stats_key(ctx.context["user_id"]))
    return {"prefix": prefix, "deleted": deleted + ctx.previous.get("deleted", 0)}


POST_FIELDS = ["title", "content", "author_id", "created_at", "updated_at"]
PROFILE_FIELDS = ["user_id", "bio", "avatar_url", "created_at"]


def _delete_content(ctx: saga.StepContext) -> dict[str, Any]:
    user_id = ctx.context["user_id"]
    posts = Post.objects.filter(author_id=user_id)
    profiles = UserProfile.objects.filter(user_id=user_id)
    post_rows = _rows(posts, POST_FIELDS)
    profile_rows = _rows(profiles, PROFILE_FIELDS)
    posts.delete()
    profiles.delete()
    return {
        "posts": _merge(ctx.previous.get("posts", []), post_rows),
        "profiles": _merge(ctx.previous.get("profiles", []), profile_rows),
    }


def _restore_content(payload: dict[str, Any], context: dict[str, Any]) -> None:
    _restore(Post, payload.get("posts", []), ("created_at", "updated_at"))
    _restore(UserProfile, payload.get("profiles", []), ("created_at",))


EVENT_FIELDS = ["event_type", "user_id", "session_id", "timestamp", "data"]


def _analytics(ctx: saga.StepContext) -> dict[str, Any]:
    user_id = ctx.context["user_id"]
    mode = ctx.context["analytics"]
    events = AnalyticsEvent.objects.filter(user_id=user_id)
    if mode == "delete":
        rows = _rows(events, EVENT_FIELDS)
        events.delete()
        return {"mode": mode, "events": _merge(ctx.previous.get("events", []), rows)}
    ids = list(events.values_list("pk", flat=True))
    events.update(user_id=None)
    previous = ctx.previous.get("event_ids", [])
    return {"mode": mode, "event_ids": ids + [i for i in previous if i not in set(ids)]}


def _restore_analytics(payload: dict[str, Any], context: dict[str, Any]) -> None:
    if payload.get("mode") == "delete":
        _restore(AnalyticsEvent, payload.get("events", []), ())
        return
    for chunk in _chunks(payload.get("event_ids", [])):
        AnalyticsEvent.objects.filter(pk__in=chunk, user_id__isnull=True).update(user_id=context["user_id"])


#: What is restored of a deleted user; ``username_skeleton`` too, so that a look-alike kept from
#: before the rule (``kept:<id>``) comes back as it was.
USER_FIELDS = ["username", "username_skeleton", "email", "first_name", "last_name", "created_at", "updated_at"]


def _delete_user(ctx: saga.StepContext) -> dict[str, Any]:
    users = User.objects.filter(pk=ctx.context["user_id"])
    rows = _rows(users, USER_FIELDS)
    users.delete()
    return {"users": _merge(ctx.previous.get("users", []), rows)}


def _restore_user(payload: dict[str, Any], context: dict[str, Any]) -> None:
    _restore(User, payload.get("users", []), ("created_at", "updated_at"))


def _build(context: dict[str, Any]) -> list[saga.Step]:
    return [
        saga.Step(STEP_MARK, aliases.USERS, _mark_deleting, _unmark),
        saga.Step(STEP_CACHE, aliases.CACHE, _clear_cache, None),
        saga.Step(STEP_CONTENT, aliases.DEFAULT, _delete_content, _restore_content),
        saga.Step(STEP_ANALYTICS, aliases.ANALYTICS, _analytics, _restore_analytics),
        saga.Step(STEP_USER, aliases.USERS, _delete_user, _restore_user),
    ]


DEFINITION = saga.register(saga.SagaDefinition(SAGA_NAME, _build, on_recovery=saga.COMPLETE))


# --- service -----------------------------------------------------------------------------------
def user_delete_everywhere(*, user_id: int, precondition: Callable[[User], None] | None = None) -> dict[str, Any]:
    """Delete user ``user_id`` and everything of theirs on every database, all or nothing.

    Raises :class:`~core.errors.NotFound` for an unknown user or one whose deletion another run has
    begun, and on a failed step :class:`~core.services.saga.SagaStepUnavailable` (503) /
    ``SagaStepConflict`` (409) naming the step, after restoring what the earlier steps removed.
    ``precondition(user)`` runs on the locked user row before anything is removed (it raises to
    refuse). Returns what was removed.
    """
    # Unknown or already being deleted: 404 without a saga run. Two callers passing this at once
    # both start a run; the mark step lets one of them through (the other's run ends at once, a 404).
    if not User.objects.filter(pk=user_id, deleting_saga_id__isnull=True).exists():
        raise NotFound("user", user_id)
    context = {"user_id": int(user_id), "analytics": settings.USER_DELETION_ANALYTICS}
    objects = {PRECONDITION: precondition} if precondition is not None else None
    run = saga.run(DEFINITION, context, objects=objects)
    result = run.results
    analytics = result[STEP_ANALYTICS]
    return {
        "user_id": int(user_id),
        "cache_entries": result[STEP_CACHE]["deleted"],
        "posts": len(result[STEP_CONTENT]["posts"]),
        "profiles": len(result[STEP_CONTENT]["profiles"]),
        "events": len(analytics.get("events", analytics.get("event_ids", []))),
        "analytics": analytics["mode"],
        "saga_id": run.saga_id,
    }
