"""Token authentication with a short per-process memory of tokens already checked.

DRF's ``TokenAuthentication`` asks ``default`` for the token and its user on every request: a
query, an ORM compile and a pool check-out, the largest single cost of a small read. This class
remembers a *valid* token's user for ``API_TOKEN_CACHE_SECONDS`` (0 turns it off) in the memory of
the process that checked it:

- a token deleted, or a user changed or deleted (deactivated, for instance), through the ORM in
  this process is forgotten at once (signals); in the *other* processes it is honoured for at most
  ``API_TOKEN_CACHE_SECONDS`` more. Keep the setting short where revocation must be immediate
  everywhere, or 0;
- unknown tokens are never remembered (each one costs its lookup, and a client sending random
  keys cannot fill the memory), and at most :data:`MAX_ENTRIES` valid ones are kept (oldest out);
- every request gets its own copy of the user, so nothing one request sets on it reaches another.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

MAX_ENTRIES = 1024

_lock = threading.Lock()
#: token key -> (monotonic time it was checked, user, token)
_checked: OrderedDict[str, tuple[float, Any, Token]] = OrderedDict()


def forget_all() -> None:
    with _lock:
        _checked.clear()


def _forget_token(sender: Any, instance: Token, **kwargs: Any) -> None:
    with _lock:
        _checked.pop(instance.key, None)


def _forget_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    with _lock:
        for key in [key for key, (_, user, _) in _checked.items() if user.pk == instance.pk]:
            del _checked[key]


post_save.connect(_forget_token, sender=Token, dispatch_uid="switchyard-token-cache-save")
post_delete.connect(_forget_token, sender=Token, dispatch_uid="switchyard-token-cache-delete")
post_save.connect(_forget_user, sender=get_user_model(), dispatch_uid="switchyard-token-cache-user-save")
post_delete.connect(_forget_user, sender=get_user_model(), dispatch_uid="switchyard-token-cache-user-delete")


def _own_copy(user: Any) -> Any:
    """A shallow copy of a remembered user for one request: what ``copy.copy`` gives (its own
    attributes and model state, the field values shared), without the pickle protocol's detour
    (``__reduce_ex__``, ``__getstate__``/``__setstate__``), which cost more than the rest of the
    authentication."""
    clone = user.__class__.__new__(user.__class__)
    clone.__dict__.update(user.__dict__)
    state = clone._state = copy.copy(user._state)
    state.fields_cache = dict(user._state.fields_cache)
    return clone


class CachedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, with valid tokens remembered briefly (module doc)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        seconds = settings.API_TOKEN_CACHE_SECONDS
        if seconds <= 0:
            return super().authenticate_credentials(key)
        now = time.monotonic()
        with _lock:
            hit = _checked.get(key)
        if hit is not None and now - hit[0] < seconds:
            return _own_copy(hit[1]), hit[2]
        user, token = super().authenticate_credentials(key)  # 401 for unknown keys and inactive users
        with _lock:
            _checked[key] = (now, user, token)
            _checked.move_to_end(key)
            while len(_checked) > MAX_ENTRIES:
                _checked.popitem(last=False)
        return _own_copy(user), token
