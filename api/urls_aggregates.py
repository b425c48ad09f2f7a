"""URLs of the aggregates area (see api/urls.py)."""

urlpatterns: list = []
