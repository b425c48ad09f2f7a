"""Two tiny views used by the replica tests to go through the whole middleware stack.

They are not part of the API; the tests mount them with ``override_settings(ROOT_URLCONF=...)``.
Each answers which aliases its queries actually ran on (from the per-request timings).
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from core.users.models import User
from routers import state


def _touched() -> list[str]:
    return sorted(state.current().timings)


@csrf_exempt
def create_and_read_back(request: HttpRequest) -> JsonResponse:
    name = f"ryw-{uuid.uuid4().hex[:12]}"
    user = User.objects.create(username=name, email=f"{name}@example.com")
    before = {alias: entry[0] for alias, entry in state.current().timings.items()}
    found = User.objects.filter(pk=user.pk).exists()
    read_on = sorted(alias for alias, entry in state.current().timings.items() if entry[0] > before.get(alias, 0))
    return JsonResponse({"id": user.pk, "read_back": found, "touched": _touched(), "read_on": read_on}, status=201)


def read_user(request: HttpRequest, pk: int) -> JsonResponse:
    found = User.objects.filter(pk=pk).exists()
    return JsonResponse({"found": found, "touched": _touched()})


ATTEMPTS: list[str] = []


def read_user_cut_midway(request: HttpRequest, pk: int) -> JsonResponse:
    """Read once; when the read went to a replica, cut that replica connection (as a server
    shutdown does) and read again: the second read fails for a connection reason."""
    import psycopg
    from django.db import connections

    User.objects.filter(pk=pk).exists()
    alias = _touched()[0]
    ATTEMPTS.append(alias)
    if alias != User._meta.app_label and "_replica_" in alias:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        db = connections[alias].settings_dict
        with psycopg.connect(
            host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True
        ) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", [pid])
    found = User.objects.filter(pk=pk).exists()
    return JsonResponse({"found": found, "touched": _touched()})


@csrf_exempt
def cut_then_write(request: HttpRequest, pk: int) -> JsonResponse:
    """Like an authentication lookup on a replica: read (and lose the replica) before the body is
    parsed; then parse the body and write."""
    response = read_user_cut_midway(request, pk)
    import json

    name = json.loads(request.body)["username"]
    created = User.objects.create(username=name, email=f"{name}@example.com")
    return JsonResponse({"id": created.pk, "read": json.loads(response.content)}, status=201)


urlpatterns = [
    path("replica-test/users/<int:pk>/cut-then-write/", cut_then_write),
    path("replica-test/users/<int:pk>/cut/", read_user_cut_midway),
    path("replica-test/users/", create_and_read_back),
    path("replica-test/users/<int:pk>/", read_user),
]
