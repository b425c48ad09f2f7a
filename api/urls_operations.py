"""URLs of the operations area (see api/urls.py): registrations and the staff view of the databases."""

from django.urls import path

from api.registrations import RegistrationView

urlpatterns: list = [
    path("registrations/", RegistrationView.as_view(), name="registration-create"),
]
