"""Read-only admin of API tokens: who holds which scopes, bound to whom, used when, revoked when.
Never the key (not stored) nor its digest (see core/admin_readonly.py)."""

from __future__ import annotations

from django.contrib import admin
from rest_framework.authtoken.models import TokenProxy

from core.admin_readonly import ReadOnlyAdmin
from core.tokens.models import ApiToken

# DRF's own token admin (plain keys) is for rest_framework.authtoken's table, which the hashed
# tokens replaced (core.tokens migration 0002): not shown.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = [
        "prefix",
        "account",
        "scopes",
        "bound_user_id",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    fields = list_display
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "account__username"]
    list_select_related = ["account"]
