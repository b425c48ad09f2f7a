from django.apps import AppConfig


class TokensConfig(AppConfig):
    """App label ``tokens``: API tokens (hashed), routed to default."""

    name = "core.tokens"
    label = "tokens"
    default_auto_field = "django.db.models.BigAutoField"
