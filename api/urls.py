"""``/api/v1/`` URLs. Each area keeps its own URL module; the aggregates come first so that
``users/activity/`` and ``users/{id}/dashboard/`` win over the users viewset's ``users/{pk}/``."""

from django.urls import include, path

urlpatterns = [
    path("", include("api.urls_aggregates")),
    path("", include("api.urls_operations")),
    path("", include("api.urls_resources")),
]
