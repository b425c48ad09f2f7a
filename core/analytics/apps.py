from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    """App label ``analytics``: routed to analytics_db."""

    name = "core.analytics"
    label = "analytics"
    default_auto_field = "django.db.models.BigAutoField"
