from django.apps import AppConfig


class LegacyConfig(AppConfig):
    """App label ``legacy``: routed to legacy_db (read-only by default)."""

    name = "core.legacy"
    label = "legacy"
    default_auto_field = "django.db.models.BigAutoField"
