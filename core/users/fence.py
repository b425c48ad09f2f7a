"""The fence between writes that name a user and that user's deletion (docs/sagas.md, "No orphans").

A post, a profile or (with ``USER_DELETION_ANALYTICS=delete``) an analytics event names a user of
users_db by plain id; there is no foreign key across databases. A write of such a row runs inside
:func:`users_fenced`:

1. a transaction on users_db's primary takes ``SELECT ... FOR KEY SHARE`` on the named users that
   exist and whose deletion has not begun (``deleting_saga_id IS NULL``); any other id is refused
   with a 400 on the caller's field, exactly as an unknown user;
2. the caller writes its row on its own database and commits, *while* the share locks are held;
3. the users_db transaction ends (it wrote nothing), releasing the locks.

The deletion saga's first step (``core.services.user_deletion``) takes ``FOR UPDATE`` on the user
row and sets ``deleting_saga_id``: it waits for every fenced write in flight to commit, and every
fenced write that comes after it sees the mark and is refused. So a referencing row is either
committed before the mark (and the saga's later steps delete it) or never written.

``FOR KEY SHARE`` does not conflict with ordinary updates of the user row nor with other fenced
writes, so concurrent posts of one author do not wait for each other. On SQLite (the embedded
default) the users_db transaction is ``BEGIN IMMEDIATE``, which holds the database's write lock
for the same span: coarser, the same guarantee.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from django.db import connections, router, transaction

from core.errors import FieldErrors
from core.users.models import User


def _live_ids(db: str, ids: list[int]) -> set[int]:
    connection = connections[db]
    if connection.vendor == "postgresql":
        q = connection.ops.quote_name
        sql = (
            f"SELECT {q('id')} FROM {q(User._meta.db_table)} WHERE {q('id')} = ANY(%s::bigint[]) "
            f"AND {q('deleting_saga_id')} IS NULL ORDER BY {q('id')} FOR KEY SHARE"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [ids])
            return {row[0] for row in cursor.fetchall()}
    # SQLite: the IMMEDIATE transaction already holds the write lock; others: FOR UPDATE.
    rows = User.objects.using(db).filter(pk__in=ids, deleting_saga_id__isnull=True)
    if connection.features.has_select_for_update:
        rows = rows.select_for_update()
    return set(rows.values_list("pk", flat=True))


def missing_message(user_id: int) -> str:
    return f"No user with id {user_id} exists."


@contextlib.contextmanager
def users_fenced(
    user_ids: Iterable[int | None],
    *,
    field: str = "user_id",
    on_missing: Callable[[list[int]], FieldErrors] | None = None,
    strict: bool = True,
) -> Iterator[set[int]]:
    """Hold the users named by a write against their deletion until the block ends (see the module
    docstring). Raises :class:`~core.errors.FieldErrors` on ``field`` (code ``does_not_exist``)
    when one of them does not exist or is being deleted (``on_missing(ids)`` builds another error).
    ``None`` ids are ignored. Yields the ids held; with ``strict=False`` nothing is raised and the
    caller writes only for the ids yielded (a bulk job skipping users deleted meanwhile).
    """
    ids = sorted({int(i) for i in user_ids if i is not None})
    if not ids:
        yield set()
        return
    db = router.db_for_write(User)  # the primary: a replica cannot lock, and may lag
    with transaction.atomic(using=db):
        live = _live_ids(db, ids)
        missing = [i for i in ids if i not in live]
        if missing and strict and on_missing is not None:
            raise on_missing(missing)
        if missing and strict:
            raise FieldErrors({field: [("does_not_exist", missing_message(missing[0]))]})
        yield live
