from django.apps import AppConfig


class CacheConfig(AppConfig):
    """App label ``cache``: routed to cache_db."""

    name = "core.cache"
    label = "cache"
    default_auto_field = "django.db.models.BigAutoField"
