"""Read-only admin of saga runs, their steps and idempotency records (see core/admin_readonly.py)."""

from __future__ import annotations

from django.contrib import admin

from core.admin_readonly import ReadOnlyAdmin
from core.models import IdempotencyRecord, SagaRun, SagaStep


class SagaStepInline(admin.TabularInline):
    model = SagaStep
    fields = ["position", "name", "alias", "status", "error", "started_at", "finished_at", "compensated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(SagaRun)
class SagaRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "name",
        "status",
        "failed_step",
        "recovery_attempts",
        "created_at",
        "updated_at",
        "finished_at",
    ]
    fields = [
        "id",
        "name",
        "status",
        "failed_step",
        "error",
        "recovery_attempts",
        "created_at",
        "updated_at",
        "finished_at",
    ]
    list_filter = ["status", "name"]
    date_hierarchy = "created_at"
    inlines = [SagaStepInline]


@admin.register(SagaStep)
class SagaStepAdmin(ReadOnlyAdmin):
    list_display = ["id", "saga", "position", "name", "alias", "status", "started_at", "finished_at", "compensated_at"]
    fields = [
        "id",
        "saga",
        "position",
        "name",
        "alias",
        "status",
        "error",
        "started_at",
        "finished_at",
        "compensated_at",
    ]
    list_filter = ["status", "alias", "name"]
    list_select_related = ["saga"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "key", "status", "response_status", "created_at", "expires_at"]
    fields = [
        "id",
        "key",
        "fingerprint",
        "status",
        "response_status",
        "response_content_type",
        "created_at",
        "updated_at",
        "expires_at",
    ]
    list_filter = ["status", "response_status"]
    search_fields = ["key"]
