"""The project's URLs plus ``/bench/bare/``: a bare Django view returning a small constant JSON
dict, the reference of ``bench/throughput.sh`` (same process, middleware and gunicorn settings)."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

BARE = {"status": "ok", "service": "switchyard", "version": 1}


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse(BARE)


urlpatterns = [
    path("bench/bare/", bare),
    path("", include("core.urls")),
]
