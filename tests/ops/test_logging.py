"""JSON logs: one object per line, with the request id and the per-alias query time."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.http import JsonResponse
from django.test import override_settings
from django.urls import path

from core import aliases
from core.logging import ACCESS_LOGGER, JSONFormatter, request_id_var
from core.users.models import User
from tests.factories import make_user


def _count_users(request):  # type: ignore[no-untyped-def]
    logging.getLogger("switchyard.test").info("counting users")
    return JsonResponse({"users": User.objects.count()})


urlpatterns = [path("log-test/users/count/", _count_users)]


def render(record: logging.LogRecord) -> dict:
    line = JSONFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def test_formatter_writes_one_json_object_with_extras_and_exception() -> None:
    token = request_id_var.set("req-42")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            record = logging.LogRecord("x.y", logging.ERROR, __file__, 1, "failed %s", ("thing",), sys.exc_info())
        record.alias = "users_db"
        out = render(record)
    finally:
        request_id_var.reset(token)
    assert out["msg"] == "failed thing"
    assert out["level"] == "ERROR"
    assert out["logger"] == "x.y"
    assert out["request_id"] == "req-42"
    assert out["alias"] == "users_db"
    assert out["ts"].endswith("Z")
    assert "ValueError: boom" in out["exc"]


def test_outside_a_request_there_is_no_request_id() -> None:
    out = render(logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None))
    assert "request_id" not in out


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS], transaction=True)
def test_request_logs_carry_the_request_id_and_the_access_line_the_db_time(caplog) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    make_user()
    make_user()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO):
            response = Client().get("/log-test/users/count/", headers={"X-Request-ID": "trace-7f3a"})
    finally:
        root.removeHandler(handler)
    assert response.json() == {"users": 2}
    lines = {entry["logger"]: entry for entry in map(json.loads, stream.getvalue().splitlines())}
    assert lines["switchyard.test"]["request_id"] == "trace-7f3a"
    access = lines[ACCESS_LOGGER]
    assert access["request_id"] == "trace-7f3a"
    assert access["status"] == 200
    assert access["method"] == "GET"
    assert access["route"] == "/log-test/users/count/"
    assert access["db"][aliases.USERS]["queries"] == 1
    assert access["db"][aliases.USERS]["ms"] > 0
    assert list(access["db"]) == [aliases.USERS]
    assert access["duration_ms"] >= access["db"][aliases.USERS]["ms"]


def test_the_time_is_utc_with_milliseconds_across_seconds() -> None:
    """Lines of one second share its formatted date; the next second's lines get their own."""
    stamps = []
    for created in (1764479588.2331, 1764479588.9999, 1764479589.0004, 1700000000.5):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "t", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        stamps.append(render(record)["ts"])
    assert stamps == [
        "2025-11-30T05:13:08.233Z",
        "2025-11-30T05:13:08.999Z",
        "2025-11-30T05:13:09.000Z",
        "2023-11-14T22:13:20.500Z",
    ]


def test_what_orjson_cannot_write_is_still_one_json_line() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "big", None, None)
    record.huge = 2**70
    record.thing = object()
    out = render(record)
    assert out["huge"] == 2**70
    assert out["thing"].startswith("<object object")
