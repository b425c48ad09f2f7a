"""URLs of the operations area (see api/urls.py): registrations and the staff view of the databases."""

from django.urls import path

from api.admin_databases import AdminDatabaseListView, AdminSlowQueryView
from api.registrations import RegistrationView

urlpatterns: list = [
    path("registrations/", RegistrationView.as_view(), name="registration-create"),
    path("admin/databases/", AdminDatabaseListView.as_view(), name="admin-databases"),
    path("admin/databases/slow-queries/", AdminSlowQueryView.as_view(), name="admin-databases-slow-queries"),
]
