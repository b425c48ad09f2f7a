"""MySQL/MariaDB (mysqlclient) with the connection circuit breaker. ENGINE ``core.db_backends.mysql``."""

from __future__ import annotations

import time
from typing import Any

import MySQLdb
from django.db.backends.mysql import base

from core import instrumentation
from core.db_backends import fresh
from core.db_backends.breaker import BreakerOpen, breaker_for


class DatabaseWrapper(base.DatabaseWrapper):
    def _probe(self) -> None:
        fresh.probe(self, base.DatabaseWrapper)

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
