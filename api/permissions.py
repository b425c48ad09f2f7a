"""Who may do what: the scope every operation needs, object ownership, personal data.

The rules (docs/security.md):

- every ``/api/v1/`` operation needs a token holding its scope (:func:`required_scopes`): ``read``
  for reads (``admin`` for the databases' views), the view's ``write_scope`` for the rest
  (writes that store or reveal emails also ``pii:read``). A view
  that names no scope for a write refuses it (fail closed). Missing scope: 403 with
  ``required_scope``;
- a write scope implies reading the resource it writes (:func:`read_implied_by`): the reads of a
  view that need ``read`` are allowed to its ``write_scope`` as well (never ``pii:read``, never
  another resource, never ``admin``), so no write answers an existing object its token could not
  read (GitHub's fine-grained tokens, Stripe's restricted keys);
- a token bound to user U (``Grant.bound_user_id``) writes only U's objects
  (:func:`require_acting_for`, :class:`PostOwnership`) and cannot do writes that concern no user
  of its own (registering others, creating users, legacy customers);
- an unbound token with a write scope is a trusted backend: it may act for any user;
- personal data (``email``, ``first_name``, ``last_name``) is shown only to tokens with
  ``pii:read`` and to the bound user's own record (:func:`may_read_pii`, :func:`redact_user`);
  legacy customers' names and emails only to tokens with ``pii:read`` (no token is bound to a
  customer), and a search or ordering on them needs ``pii:read`` (:func:`require_pii_read`).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from core.tokens import scopes as scope_names

PII_FIELDS = ("email", "first_name", "last_name")
#: Why personal fields may be null: said once, in every schema that carries them.
PII_NOTE = "Personal data: null unless the token has `pii:read` or is bound to this user."
#: A legacy customer's personal data: no token is bound to a customer, so only ``pii:read`` shows it.
LEGACY_PII_FIELDS = ("customer_name", "customer_email")
LEGACY_PII_NOTE = "Personal data: null unless the token has `pii:read`."


class ScopeRequired(exceptions.PermissionDenied):
    """403 naming the scope the operation needs (``required_scope`` in the problem body)."""

    default_code = "scope_required"

    def __init__(self, scope: str, detail: str | None = None) -> None:
        self.required_scope = scope
        super().__init__(detail or f"This operation needs a token with the `{scope}` scope.")


class NotOwner(exceptions.PermissionDenied):
    """403: a bound token acting for another user."""

    default_code = "not_owner"


def grant_of(request: Request) -> Any:
    """The request's :class:`api.authentication.Grant`, or None (no token, or another kind of auth)."""
    auth = getattr(request, "auth", None)
    return auth if hasattr(auth, "scopes") else None


def required_scopes(view: Any, method: str) -> tuple[str, ...]:
    """The scopes ``method`` on ``view`` needs (all of them); empty when the view names none for a
    write (then refused: fail closed). A view says ``read_scope`` (default ``read``),
    ``write_scope`` (a scope or a tuple) and, per action, ``action_scopes``."""
    by_action = getattr(view, "action_scopes", None) or {}
    action = getattr(view, "action", None)
    if action in by_action:
        needed = by_action[action]
    elif method in permissions.SAFE_METHODS:
        needed = getattr(view, "read_scope", scope_names.READ)
    else:
        needed = getattr(view, "write_scope", None)
    if not needed:
        return ()
    return (needed,) if isinstance(needed, str) else tuple(needed)


#: The scopes that write a resource; each implies reading the resource it writes (never another).
WRITE_SCOPES: frozenset[str] = frozenset(
    {
        scope_names.POSTS_WRITE,
        scope_names.EVENTS_WRITE,
        scope_names.USERS_WRITE,
        scope_names.REGISTRATIONS_WRITE,
        scope_names.LEGACY_WRITE,
    }
)

#: The rule, as the schema states it on every operation (openapi.schema) and docs/security.md says it.
SCOPE_RULE = (
    "A write scope also allows reading the resource it writes, never personal data (`pii:read`) nor "
    "another resource; a write answers an existing object only as a read answers it to the same token."
)


def read_implied_by(view: Any, method: str) -> tuple[str, ...]:
    """The write scopes that also allow ``method`` on ``view``, each on its own: a read that needs
    ``read`` on a view that writes with a write scope is allowed to that scope as well. A write
    scope never implies ``pii:read`` (personal data stays null, its filters 403), ``admin``, or the
    reads of another view (the aggregates, which join several resources, have no write scope)."""
    return tuple(scopes[0] for scopes in scope_alternatives(view, method)[1:])


def scope_alternatives(view: Any, method: str) -> tuple[tuple[str, ...], ...]:
    """Every set of scopes that allows ``method`` on ``view`` (any one set suffices; each set is
    needed whole): the required scopes first, then each write scope that implies the read.
    Empty when no token may do it (a write whose view names no scope)."""
    needed = required_scopes(view, method)
    if not needed:
        return ()
    if method not in permissions.SAFE_METHODS or needed != (scope_names.READ,):
        return (needed,)
    write = getattr(view, "write_scope", None) or ()
    named = (write,) if isinstance(write, str) else tuple(write)
    return (needed, *((scope,) for scope in named if scope in WRITE_SCOPES))


def scope_statement(view: Any, method: str) -> str:
    """The **Scope:** line of an operation's description in the schema: its scopes and how the rule
    (:data:`SCOPE_RULE`) applies to it."""
    alternatives = scope_alternatives(view, method)
    line = "**Scope:** " + " or ".join(" and ".join(f"`{s}`" for s in scopes) for scopes in alternatives) + "."
    if method not in permissions.SAFE_METHODS:
        return (
            f"{line} A write scope also allows reading the resource it writes, never personal data "
            "(`pii:read`): this answer shows an existing object only as a read shows it to the same token."
        )
    implied = read_implied_by(view, method)
    if implied:
        names = " and ".join(f"`{s}`" for s in implied)
        return (
            f"{line} A write scope also allows reading the resource it writes ({names} here), never "
            "personal data (`pii:read`) nor another resource."
        )
    return (
        f"{line} No write scope allows it: a write scope allows reading only the resource it writes, "
        "never personal data (`pii:read`)."
    )


class HasScope(permissions.BasePermission):
    """The default permission of every API view: a token (401 otherwise) holding the scopes the
    operation needs, or a write scope that implies the read (:func:`scope_alternatives`); 403 with
    ``required_scope`` otherwise (the first scope of the required set the token lacks)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        grant = grant_of(request)
        if grant is None:
            return False  # DRF answers 401 (WWW-Authenticate: Token)
        needed = required_scopes(view, request.method)
        if not needed:
            raise exceptions.PermissionDenied("No token may do this operation.")
        for missing in needed:
            if not grant.has(missing):
                break
        else:
            return True
        implied = read_implied_by(view, request.method)  # only when the required set is not held
        if any(grant.has(scope) for scope in implied):
            return True
        if not implied:
            raise ScopeRequired(missing)
        others = " or ".join(f"`{scope}`" for scope in implied)
        raise ScopeRequired(missing, f"This operation needs a token with the `{missing}` scope (or {others}).")


def is_bound(request: Request) -> bool:
    grant = grant_of(request)
    return grant is not None and grant.bound_user_id is not None


def require_acting_for(request: Request, user_id: int | None, *, allow_none: bool = False) -> None:
    """A bound token may act only for its own user: 403 when ``user_id`` is another's (or None,
    unless ``allow_none``). Unbound tokens act for anyone."""
    grant = grant_of(request)
    if grant is None or grant.bound_user_id is None:
        return
    if user_id is None and allow_none:
        return
    if user_id != grant.bound_user_id:
        raise NotOwner(f"This token is bound to user {grant.bound_user_id}; it may act only for that user.")


def require_unbound(request: Request, what: str) -> None:
    """403 for a bound token on a write that concerns no user of its own."""
    grant = grant_of(request)
    if grant is not None and grant.bound_user_id is not None:
        raise NotOwner(f"A token bound to a user may not {what}.")


class PostOwnership(permissions.BasePermission):
    """A bound token changes and deletes only posts whose author is its user."""

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if request.method not in permissions.SAFE_METHODS:
            require_acting_for(request, obj.author_id)
        return True


class EventOwnership:
    """Events: a bound token records only events with its own ``user_id`` or none (a batch with
    any other is refused whole)."""

    @staticmethod
    def check(request: Request, user_ids: Iterable[int | None]) -> None:
        grant = grant_of(request)
        if grant is None or grant.bound_user_id is None:
            return
        others = {uid for uid in user_ids if uid is not None and uid != grant.bound_user_id}
        if others:
            raise NotOwner(
                f"This token is bound to user {grant.bound_user_id}; it may record events only for that user "
                f"(or none). {len(others)} other user id(s) given; nothing was recorded."
            )


# --- personal data -------------------------------------------------------------------------------
def may_read_all_pii(request: Request | None) -> bool:
    grant = grant_of(request) if request is not None else None
    return grant is not None and grant.has(scope_names.PII_READ)


def may_read_pii(request: Request | None, user_id: Any) -> bool:
    grant = grant_of(request) if request is not None else None
    if grant is None:
        return False
    return grant.has(scope_names.PII_READ) or (grant.bound_user_id is not None and grant.bound_user_id == user_id)


def redact_user(request: Request | None, user: MutableMapping[str, Any] | None, id_field: str = "id") -> Any:
    """Null the personal fields of one user dict the caller may not read (in place; returned)."""
    if user is not None and not may_read_pii(request, user.get(id_field)):
        for name in PII_FIELDS:
            if name in user:
                user[name] = None
    return user


def redact_users(request: Request | None, users: Iterable[MutableMapping[str, Any]] | None) -> None:
    if users is None or may_read_all_pii(request):
        return
    for user in users:
        redact_user(request, user)


def require_pii_read(request: Request, what: str) -> None:
    if not may_read_all_pii(request):
        raise ScopeRequired(scope_names.PII_READ, f"{what} needs a token with the `pii:read` scope.")
