"""Drop cached user stats when the user or one of their posts changes.

Connected once from :meth:`core.apps.CoreConfig.ready`. The cache is cleared after the write
commits (``transaction.on_commit``), so a concurrent reader cannot cache the old figures again
from a transaction that has not committed yet; the delete itself runs within the cache's budget
(:func:`core.services.user_stats.invalidate_user_stats`). A post that moves to another author
clears both authors' entries. The callbacks are ``robust``: the write has committed, so a failure
to clear the cache is logged (the entry expires on its own) and never turns the write into an error.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_init, post_save

from core.blog.models import Post
from core.services.user_stats import invalidate_user_stats
from core.users.models import User

_LOADED_AUTHOR = "_stats_loaded_author_id"


def _remember_author(sender: type[Post], instance: Post, **kwargs: Any) -> None:
    instance.__dict__[_LOADED_AUTHOR] = instance.__dict__.get("author_id")


def _post_changed(sender: type[Post], instance: Post, using: str, **kwargs: Any) -> None:
    authors = (instance.__dict__.get("author_id"), instance.__dict__.get(_LOADED_AUTHOR))
    transaction.on_commit(lambda: invalidate_user_stats(*authors), using=using, robust=True)
    instance.__dict__[_LOADED_AUTHOR] = authors[0]


def _user_changed(sender: type[User], instance: User, using: str, created: bool = False, **kwargs: Any) -> None:
    if created:
        return  # a new user has no cached stats yet
    user_id = instance.pk
    transaction.on_commit(lambda: invalidate_user_stats(user_id), using=using, robust=True)


def connect() -> None:
    post_init.connect(_remember_author, sender=Post, dispatch_uid="switchyard-stats-post-init")
    post_save.connect(_post_changed, sender=Post, dispatch_uid="switchyard-stats-post-save")
    post_delete.connect(_post_changed, sender=Post, dispatch_uid="switchyard-stats-post-delete")
    post_save.connect(_user_changed, sender=User, dispatch_uid="switchyard-stats-user-save")
    post_delete.connect(_user_changed, sender=User, dispatch_uid="switchyard-stats-user-delete")
