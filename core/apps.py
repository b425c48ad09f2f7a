from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The project itself: management commands, cross-database services, saga and idempotency records."""

    name = "core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import instrumentation, tablespaces

        instrumentation.connect()
        tablespaces.connect()
