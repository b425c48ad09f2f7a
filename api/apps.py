from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST layer: serializers, viewsets, pagination, errors, middleware. Owns no tables."""

    name = "api"
    label = "api"
