"""MySQL/MariaDB (mysqlclient) with the connection circuit breaker. ENGINE ``core.db_backends.mysql``."""

from __future__ import annotations

import time
from typing import Any

import MySQLdb
from django.db.backends.mysql import base

from core import instrumentation
from core.db_backends.breaker import BreakerOpen, breaker_for

PROBE_TIMEOUT_SECONDS = 2


class DatabaseWrapper(base.DatabaseWrapper):
    def _probe(self) -> None:
        s = self.settings_dict
        kwargs: dict[str, Any] = {"connect_timeout": PROBE_TIMEOUT_SECONDS, "user": s.get("USER") or "root"}
        if s.get("HOST", "").startswith("/"):
            kwargs["unix_socket"] = s["HOST"]
        else:
            kwargs["host"] = s.get("HOST") or "localhost"
            if s.get("PORT"):
                kwargs["port"] = int(s["PORT"])
        if s.get("PASSWORD"):
            kwargs["password"] = s["PASSWORD"]
        MySQLdb.connect(**kwargs).close()

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        breaker = breaker_for(self.alias, self.settings_dict)
        started = time.perf_counter()
        try:
            breaker.allow(self._probe)
        except BreakerOpen as exc:
            # A failed attempt still counts as time on this alias (Server-Timing, metrics).
            instrumentation.record(self.alias, time.perf_counter() - started, failed=True)
            raise MySQLdb.OperationalError(2003, str(exc)) from exc
        try:
            connection = super().get_new_connection(conn_params)
        except MySQLdb.OperationalError as exc:
            breaker.failure(exc, time.perf_counter() - started)
            instrumentation.record(self.alias, time.perf_counter() - started, failed=True)
            raise
        breaker.success()
        return connection
