"""Explicit database choice, the Django way (issue 12): ``Model.objects.primary()`` / ``.replica()``.

``primary()`` reads from the model's primary database (where the routers send its writes), for
code that must see the latest committed rows whatever the request's routing would say: checks
right before a write, sagas, the users fence. ``replica()`` reads where the routers send this
request's reads: the replica chosen for the request (one healthy replica per request and primary,
round-robin), the primary when none is healthy or when a write of this request (or a recent one,
through the pin cookie) pinned it. ``replica()`` asks Django's public ``router.db_for_read``, that
is :class:`routers.primary.PrimaryReplicaRouter` and its routing state, so a request's replica is
chosen once; ``primary()`` takes the primary from the same router table
(:func:`routers.primary.primary_for_label`) without ``db_for_write``, which would also note a write
and pin the request's later reads to the primary.

    User.objects.primary().filter(pk__in=ids)
    User.objects.replica().filter(username="ada")
"""

from __future__ import annotations

from typing import Any

from django.db import models, router


class RoutedQuerySet(models.QuerySet):
    def primary(self) -> Any:
        """This queryset on the model's primary database."""
        from routers.primary import primary_for_label

        return self.using(primary_for_label(self.model._meta.app_label))

    def replica(self) -> Any:
        """This queryset where the routers send this request's reads (a healthy replica or the primary)."""
        return self.using(router.db_for_read(self.model))
