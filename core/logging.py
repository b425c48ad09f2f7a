"""Structured JSON logs: one JSON object per line, with the request id and per-alias query time.

- :class:`JSONFormatter` renders any log record as JSON: ``ts``, ``level``, ``logger``, ``msg``,
  ``pid``, ``request_id`` (of the request being served, when there is one), ``exc`` for
  exceptions, and every ``extra={...}`` field of the call.
- ``api.middleware.RequestMiddleware`` puts the request id in :data:`request_id_var` for the
  formatter, and after the response :func:`leave_access_facts` leaves them in the WSGI environ
  (``switchyard.request_id``, ``switchyard.route``, ``switchyard.db`` = alias -> queries and ms,
  from ``routers.state.current().timings``). Under gunicorn, :class:`GunicornLogger` writes the
  access line from them; elsewhere (runserver, tests) :func:`leave_access_facts` logs the same line on
  the ``switchyard.access`` logger.

This module imports nothing from Django at import time: gunicorn.conf.py loads it in the master.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import time
import traceback
from typing import Any

import orjson

#: The id of the request being served in this context ("" outside a request).
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("switchyard_request_id", default="")

ACCESS_LOGGER = "switchyard.access"

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()) | {
    "message",
    "asctime",
    "taskName",
}


#: (a whole second, its "YYYY-MM-DDTHH:MM:SS" in UTC): the last one written, shared by the threads
#: (one tuple, replaced whole), so that a second's lines format their date once.
_second: tuple[int, str] = (-1, "")


def _iso(record: logging.LogRecord) -> str:
    """The record's time as ``2026-11-30T05:13:08.233Z`` (UTC, milliseconds as ``logging`` counts
    them in ``record.msecs``)."""
    global _second
    whole = int(record.created)
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{cached[1]}.{int(record.msecs):03d}Z"


#: For the lines orjson refuses (an integer beyond 64 bits): one encoder for all of them.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))


class JSONFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "msg": ..., "request_id": ..., ...extra}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": _iso(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            payload["request_id"] = request_id
        attributes = record.__dict__
        if attributes.keys() - _STANDARD_ATTRS:  # the extra fields of the call, in their order
            for key, value in attributes.items():
                if key not in _STANDARD_ATTRS and key not in payload and key[:1] != "_":
                    payload[key] = value
        if record.exc_info:
            payload["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        try:  # orjson: a line in about a tenth of json's time (api/renderers.py)
            return orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return _ENCODER.encode(payload)


def db_summary(timings: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """``{"users_db": [2, 0.0031]}`` -> ``{"users_db": {"queries": 2, "ms": 3.1}}``."""
    return {
        alias: {"queries": int(count), "ms": round(seconds * 1000, 3)} for alias, (count, seconds) in timings.items()
    }


def access_fields(
    *,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    environ: dict[str, Any],
    remote: str = "",
    size: int | None = None,
    user_agent: str = "",
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event": "access",
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration_ms, 3),
    }
    route = environ.get("switchyard.route")
    if route is not None:
        fields["route"] = route
    if remote:
        fields["remote"] = remote
    if size is not None:
        fields["bytes"] = size
    if user_agent:
        fields["user_agent"] = user_agent
    if environ.get("switchyard.db"):
        fields["db"] = environ["switchyard.db"]
    request_id = environ.get("switchyard.request_id")
    if request_id:
        fields["request_id"] = request_id
    return fields


def leave_access_facts(request: Any, response: Any, timings: dict[str, list[float]], started: float) -> None:
    """After a request: its access facts in the WSGI environ for :class:`GunicornLogger`
    (``switchyard.request_id``, ``switchyard.route``, ``switchyard.db``); outside gunicorn
    (runserver, tests) the access line logged here. Called by ``api.middleware.RequestMiddleware``."""
    environ = request.META
    environ["switchyard.request_id"] = response.get("X-Request-ID") or request_id_var.get()
    match = getattr(request, "resolver_match", None)
    environ["switchyard.route"] = ("/" + match.route) if match is not None and match.route else None
    environ["switchyard.db"] = db_summary(timings)
    if "gunicorn.socket" not in environ:
        logging.getLogger(ACCESS_LOGGER).info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra=access_fields(
                method=request.method,
                path=request.path,
                status=response.status_code,
                duration_ms=(time.perf_counter() - started) * 1000,
                environ=environ,
                remote=environ.get("REMOTE_ADDR", ""),
            ),
        )


try:  # gunicorn is a runtime dependency, but keep this module importable without it.
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover
    _GunicornLogger = object  # type: ignore[assignment,misc]


class GunicornLogger(_GunicornLogger):  # type: ignore[misc,valid-type]
    """gunicorn's logger with the access line written as JSON (same fields as the middleware's)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JSONFormatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: dt.timedelta) -> None:
        if not self.cfg.accesslog and not self.cfg.logconfig_dict:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        try:
            code = int(status)
        except (TypeError, ValueError):
            code = 0
        fields = access_fields(
            method=environ.get("REQUEST_METHOD", "-"),
            path=environ.get("PATH_INFO", "-"),
            status=code,
            duration_ms=request_time.total_seconds() * 1000,
            environ=environ,
            remote=environ.get("REMOTE_ADDR", ""),
            size=getattr(resp, "sent", None),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
        )
        if "request_id" not in fields:
            for name, value in getattr(resp, "headers", []) or []:
                if name.lower() == "x-request-id":
                    fields["request_id"] = value
        log = self.access_log
        try:
            # Logger.info without its search of the stack for the caller (no field of the line
            # names it): the record made and handed to the handlers as Logger.info would.
            if log.isEnabledFor(logging.INFO):
                log.handle(
                    log.makeRecord(
                        log.name,
                        logging.INFO,
                        "",
                        0,
                        "%s %s %s",
                        (fields["method"], fields["path"], code),
                        None,
                        extra=fields,
                    )
                )
        except Exception:  # noqa: BLE001 - a log line must never break a response
            self.error(traceback.format_exc())


def logging_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """The ``LOGGING`` dict: everything to stderr, as JSON (``fmt="json"``) or plain text."""
    formatter = {"()": JSONFormatter} if fmt == "json" else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"switchyard": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "switchyard"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own request logger repeats what the access line says (4xx/5xx); keep errors.
            "django.request": {"level": "ERROR", "propagate": True},
            ACCESS_LOGGER: {"level": "INFO", "propagate": True},
        },
    }


__all__ = [
    "ACCESS_LOGGER",
    "GunicornLogger",
    "JSONFormatter",
    "leave_access_facts",
    "logging_config",
    "request_id_var",
]
