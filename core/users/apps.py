from django.apps import AppConfig


class UsersConfig(AppConfig):
    """App label ``users``: routed to users_db."""

    name = "core.users"
    label = "users"
    default_auto_field = "django.db.models.BigAutoField"
