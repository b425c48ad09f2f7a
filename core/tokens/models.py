"""API tokens, stored as a SHA-256 digest of the key with a short non-secret prefix (docs/security.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """One API key. The key itself is never stored: only ``digest`` (SHA-256, hex) to find it and
    ``prefix`` (its first 12 characters) for people to name it in lists and revocations."""

    prefix = models.CharField(max_length=12, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    #: space-separated scope names (core.tokens.scopes)
    scopes = models.CharField(max_length=255)
    #: a user id on users_db (no foreign key across databases); null: not bound (a trusted backend)
    bound_user_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    #: written at most once a minute per token (api.authentication)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_token"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.prefix

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())
