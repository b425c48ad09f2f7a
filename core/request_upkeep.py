"""Django's connection upkeep around each request, without walking every alias three times a request.

Django connects three receivers to its request signals: ``reset_queries`` and
``close_old_connections`` to ``request_started``, ``close_old_connections`` again to
``request_finished``. Each walks ``connections.all(initialized_only=True)``, which asks the
per-thread storage of the connection handler for every configured alias (five here, more with
replicas); each of those lookups goes through asgiref's ``Local`` (a check for a running event
loop, an exception raised and caught). Measured in process (``python -m timeit`` style loops,
this machine, session 12): ``request_started.send()`` 19 us and ``request_finished.send()`` 21 us
a request, about 40 us of a 606 us user read; 20 of the 25 ``Local`` lookups of that request.

:func:`install` replaces those three receivers with two that do the same work on the connections
this thread has opened: every wrapper of the connection handler is noted when it connects
(Django's public ``connection_created`` signal), in a per-thread weak set. A wrapper that never
connected has nothing to close and no query to forget, so walking only the noted ones does
exactly what Django's receivers do:

- on ``request_started``: clear each one's ``queries_log`` (``reset_queries``), then
  ``close_if_unusable_or_obsolete()`` (``close_old_connections``);
- on ``request_finished``: ``close_if_unusable_or_obsolete()``.

Django's third ``request_finished`` receiver, ``close_caches``, calls ``close()`` on every cache
the thread has used, again through a lookup per cache alias in a ``Local`` (one that takes a lock
per lookup); it is taken off too when no configured cache backend has a ``close()`` of its own
(``BaseCache.close`` does nothing; of Django's backends only the memcached ones close something;
here: the database cache, Redis and the per-process memory cache). Measured the same way: 9.5 us
a request for nothing.

Only the WSGI entry point installs it (``core/wsgi.py``: gunicorn, ``scripts/serve``, the
Docker image). Django's test client takes ``close_old_connections`` off the request signals
while it serves a test request (so that a test's transaction survives the request); the test
suite therefore keeps Django's receivers, and ``tests/core/test_request_upkeep.py`` checks these
against Django's on real connections. Both request signals, users_db open: 38 -> 7 us a request
(bench/README.md, session 12).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from django.conf import settings
from django.core.cache import close_caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections, reset_queries
from django.db.backends.signals import connection_created
from django.utils.connection import ConnectionDoesNotExist
from django.utils.module_loading import import_string

_local = threading.local()
_UID = "switchyard-request-upkeep"


def opened() -> weakref.WeakSet[Any]:
    """The connection handler's wrappers this thread has connected (a weak set: a wrapper the
    handler drops, when its settings change, goes with it)."""
    try:
        return _local.opened
    except AttributeError:
        _local.opened = weakref.WeakSet()
        return _local.opened


def _note(sender: Any, connection: Any, **kwargs: Any) -> None:
    # Only the handler's own wrappers: a fresh, unpooled one (core.db_backends.fresh) is closed by
    # its user, and Django's receivers never see it either (nor one under an alias of its own).
    try:
        ours = connections[connection.alias] is connection
    except ConnectionDoesNotExist:
        return
    if ours:
        opened().add(connection)


def _started(**kwargs: Any) -> None:
    for wrapper in list(opened()):
        wrapper.queries_log.clear()
        wrapper.close_if_unusable_or_obsolete()


def _finished(**kwargs: Any) -> None:
    for wrapper in list(opened()):
        wrapper.close_if_unusable_or_obsolete()


def caches_close_nothing() -> bool:
    """True when no configured cache backend overrides ``BaseCache.close`` (a no-op)."""
    return all(import_string(cache["BACKEND"]).close is BaseCache.close for cache in settings.CACHES.values())


def install() -> None:
    """Swap Django's three connection receivers for these two, and take ``close_caches`` off when
    it closes nothing (idempotent). The wrappers this thread has already connected (the settings
    checks at start-up) are noted first."""
    connection_created.connect(_note, dispatch_uid=_UID)
    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is not None:
            opened().add(wrapper)
    request_started.disconnect(reset_queries)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    request_started.connect(_started, dispatch_uid=_UID)
    request_finished.connect(_finished, dispatch_uid=_UID)
    if caches_close_nothing():
        request_finished.disconnect(close_caches)


def uninstall() -> None:
    """Django's receivers back (tests)."""
    request_started.disconnect(dispatch_uid=_UID)
    request_finished.disconnect(dispatch_uid=_UID)
    connection_created.disconnect(dispatch_uid=_UID)
    request_started.connect(reset_queries)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    request_finished.connect(close_caches)
