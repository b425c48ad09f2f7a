"""The floor's bare DRF read and list of users (``floor_urls``), behind the service's middleware
(``floor_mw_settings``): no token, scope, throttle, personal-data rule, routing or ETag, on the
service's users_db connection. What a DRF read costs in the service's frame before any of the
service's own work (bench/floor/README.md)."""

from django.urls import path
from floor_urls import read, read_list
from rest_framework.response import Response
from rest_framework.views import APIView

USERS = "users_db"


class Bare(APIView):
    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()


class DrfView(Bare):
    def get(self, request, pk: int):
        return Response(read(pk, USERS))


class DrfList(Bare):
    def get(self, request):
        return Response(read_list(USERS))


urlpatterns = [
    path("drf/<int:pk>/", DrfView.as_view()),
    path("drf/list/", DrfList.as_view()),
]
