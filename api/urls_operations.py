"""URLs of the operations area (see api/urls.py)."""

urlpatterns: list = []
