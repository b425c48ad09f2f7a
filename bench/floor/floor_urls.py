"""The floor views (bench/floor/README.md), on the bench's users table:

- ``/sql/<id>/``: one row by primary key on Django's cursor, written by ``JsonResponse``;
- ``/drf/<id>/``: the same row from a bare DRF ``APIView`` (no authentication, permission or throttle);
- ``/sql/list/`` and ``/drf/list/``: the first 50 rows by id, the same two ways.
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.http import Http404, JsonResponse
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

SQL = "SELECT id, username, email, first_name, last_name, created_at, updated_at FROM users_user WHERE id = %s"
NAMES = ("id", "username", "email", "first_name", "last_name", "created_at", "updated_at")


LIST_SQL = (
    "SELECT id, username, email, first_name, last_name, created_at, updated_at FROM users_user ORDER BY id LIMIT 50"
)


def written(row: tuple) -> dict:
    data = dict(zip(NAMES, row))
    data["created_at"] = data["created_at"].isoformat()
    data["updated_at"] = data["updated_at"].isoformat()
    return data


def read(pk: int, using: str = DEFAULT_DB_ALIAS) -> dict:
    with connections[using].cursor() as cursor:
        cursor.execute(SQL, [pk])
        row = cursor.fetchone()
    if row is None:
        raise Http404
    return written(row)


def read_list(using: str = DEFAULT_DB_ALIAS) -> dict:
    with connections[using].cursor() as cursor:
        cursor.execute(LIST_SQL)
        rows = cursor.fetchall()
    return {"results": [written(row) for row in rows]}


def sql_view(request, pk: int):
    return JsonResponse(read(pk))


def sql_list(request):
    return JsonResponse(read_list())


class DrfView(APIView):
    def get(self, request, pk: int):
        return Response(read(pk))


class DrfList(APIView):
    def get(self, request):
        return Response(read_list())


urlpatterns = [
    path("sql/<int:pk>/", sql_view),
    path("drf/<int:pk>/", DrfView.as_view()),
    path("sql/list/", sql_list),
    path("drf/list/", DrfList.as_view()),
]
