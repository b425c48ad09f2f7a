"""DB_PGBOUNCER=1: the settings that make the service safe behind PgBouncer in transaction mode,
and a concurrent workload that needs them. Runs in every pass; in the PgBouncer pass
(scripts/test-pgbouncer: every PostgreSQL alias through PgBouncer on 127.0.0.1:6433) it is the
real check: there, without DISABLE_SERVER_SIDE_CURSORS, iterator() declares WITH HOLD cursors in
one transaction and fetches from them in the next ones, which PgBouncer may hand to another
server session ("cursor ... does not exist")."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connections

from core import aliases
from core.db_config import build_databases
from core.users.models import User
from tests.factories import make_user

pytestmark = pytest.mark.real_engines


def test_db_pgbouncer_disables_server_side_cursors_and_prepared_statements(tmp_path: Path) -> None:
    environ = {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:6433/x",
        "USERS_DATABASE_URL": "postgres://postgres@127.0.0.1:6433/y",
        "LEGACY_DATABASE_URL": "mysql://root@127.0.0.1:3306/z",
    }
    plain = build_databases(environ, tmp_path)
    behind = build_databases({**environ, "DB_PGBOUNCER": "1"}, tmp_path)
    for alias in (aliases.DEFAULT, aliases.USERS):
        assert not plain[alias].get("DISABLE_SERVER_SIDE_CURSORS")
        assert "prepare_threshold" not in plain[alias]["OPTIONS"]
        assert behind[alias]["DISABLE_SERVER_SIDE_CURSORS"] is True
        assert behind[alias]["OPTIONS"]["prepare_threshold"] is None
    # MariaDB and SQLite are not behind PgBouncer: untouched.
    assert behind[aliases.LEGACY] == plain[aliases.LEGACY]
    with pytest.raises(ImproperlyConfigured, match="server_side_binding"):
        build_databases(
            {**environ, "DB_PGBOUNCER": "1", "DATABASE_URL": environ["DATABASE_URL"] + "?server_side_binding=true"},
            tmp_path,
        )


@pytest.mark.django_db(transaction=True, databases=[aliases.USERS])
def test_iterators_on_many_threads_at_once() -> None:
    """Eight threads each walk 30 rows in chunks of 2 (15 fetches each), all at the same time."""
    ids = sorted(make_user().pk for _ in range(30))
    start = threading.Barrier(8)
    results: list[object] = []

    def walk() -> None:
        try:
            start.wait(10)
            seen = [
                user.pk
                for user in User.objects.using(aliases.USERS).filter(pk__in=ids).order_by("pk").iterator(chunk_size=2)
            ]
            results.append(seen)
        except Exception as exc:  # noqa: BLE001 - reported below
            results.append(exc)
        finally:
            close_old_connections()
            connections[aliases.USERS].close()

    threads = [threading.Thread(target=walk) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [ids] * 8
