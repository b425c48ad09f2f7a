"""URLs of the resources area (see api/urls.py)."""

urlpatterns: list = []
