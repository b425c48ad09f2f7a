"""``/api/v1/`` URLs. Each area keeps its own URL module; the aggregates come first so that
``users/activity/`` and ``users/{id}/dashboard/`` win over the users viewset's ``users/{pk}/``.

The areas' patterns are joined into one list rather than ``include()``d: each include is one more
resolver every request walks through (three levels fewer for every API request; issue 12)."""

from api import urls_aggregates, urls_operations, urls_resources

urlpatterns = [*urls_aggregates.urlpatterns, *urls_operations.urlpatterns, *urls_resources.urlpatterns]
