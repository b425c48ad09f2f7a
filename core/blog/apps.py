from django.apps import AppConfig


class BlogConfig(AppConfig):
    """App label ``blog``: routed to default."""

    name = "core.blog"
    label = "blog"
    default_auto_field = "django.db.models.BigAutoField"
