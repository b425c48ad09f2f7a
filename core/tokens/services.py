"""Issuing, listing and revoking API tokens. The key is returned once, at creation, and never stored.

Keys are ``swy_`` followed by 40 random characters of ``[A-Za-z0-9]`` (about 238 bits): hashing
such a key with one SHA-256 is enough to make a stolen table useless (no dictionary or brute force
reaches it), so no slow password hash is needed and checking a key costs about a microsecond
(docs/security.md). Keys issued by DRF before this (40 hex characters) keep working: migration
0002 hashed them the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import string
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, router, transaction
from django.utils import timezone

from core.tokens import scopes as scope_names
from core.tokens.models import ApiToken

KEY_PREFIX = "swy_"
PREFIX_LENGTH = 12
_ALPHABET = string.ascii_letters + string.digits
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class TokenError(ValueError):
    """A token request that cannot be honoured (unknown scope, staff scope for a non-staff account...)."""


def key_digest(key: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


def generate_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` -> a timedelta (ValueError otherwise)."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"bad duration {text!r}: a positive number and one of s, m, h, d, w (e.g. 30d)")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class IssuedToken:
    key: str
    token: ApiToken
    account_created: bool


def token_create(
    *,
    username: str,
    staff: bool = False,
    scopes: tuple[str, ...] | None = None,
    bound_user_id: int | None = None,
    expires_in: dt.timedelta | None = None,
) -> IssuedToken:
    """A new token for the account ``username`` (created when missing, without a usable password).

    ``staff`` makes the account staff (never removes it) and gives the token every scope; otherwise
    the token gets ``scopes`` (``read`` when None). Scopes of :data:`scopes.STAFF_ONLY` need a
    staff account.
    """
    if staff and scopes is not None:
        raise TokenError("--staff gives every scope; leave out --scopes (or drop --staff)")
    granted = scope_names.ALL if staff else (scopes if scopes is not None else scope_names.DEFAULT)
    if not granted:
        raise TokenError("a token needs at least one scope")
    if bound_user_id is not None and bound_user_id < 1:
        raise TokenError("--user-id must be a positive user id")
    accounts = get_user_model()
    with transaction.atomic(using=router.db_for_write(ApiToken)):
        account, created = accounts.objects.get_or_create(username=username, defaults={"is_staff": staff})
        if created:
            account.set_unusable_password()
            account.save(update_fields=["password"])
        elif staff and not account.is_staff:
            account.is_staff = True
            account.save(update_fields=["is_staff"])
        staff_only = sorted(set(granted) & scope_names.STAFF_ONLY)
        if staff_only and not account.is_staff:
            raise TokenError(f"scope(s) {', '.join(staff_only)} need a staff account (use --staff)")
        for _ in range(5):
            key = generate_key()
            try:
                with transaction.atomic(using=router.db_for_write(ApiToken)):
                    token = ApiToken.objects.create(
                        prefix=key_prefix(key),
                        digest=key_digest(key),
                        account=account,
                        scopes=" ".join(granted),
                        bound_user_id=bound_user_id,
                        expires_at=timezone.now() + expires_in if expires_in else None,
                    )
                break
            except IntegrityError:  # a prefix already taken (48 random bits): draw again
                continue
        else:  # pragma: no cover - five collisions of 48 random bits
            raise TokenError("could not draw a free token prefix")
    return IssuedToken(key=key, token=token, account_created=created)


def token_revoke(*, prefix: str) -> ApiToken:
    """Revoke the token named by ``prefix`` (kept, with ``revoked_at``, for the record). Every
    process refuses it at once where they share CACHE_URL (api.authentication)."""
    token = ApiToken.objects.select_related("account").filter(prefix=prefix).first()
    if token is None:
        raise TokenError(f"no token with prefix {prefix!r}")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])  # post_save: forgotten here, and everywhere (shared cache)
    return token


def token_list() -> list[ApiToken]:
    return list(ApiToken.objects.select_related("account").order_by("id"))
