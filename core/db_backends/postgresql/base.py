"""PostgreSQL (psycopg 3) with the connection circuit breaker. ENGINE ``core.db_backends.postgresql``."""

from __future__ import annotations

from typing import Any

import psycopg
from django.db.backends.postgresql import base

from core.db_backends.breaker import BreakerOpen, breaker_for

PROBE_TIMEOUT_SECONDS = 2


class DatabaseWrapper(base.DatabaseWrapper):
    def _probe(self) -> None:
        s = self.settings_dict
        options = s.get("OPTIONS", {})
        timeout = min(int(options.get("connect_timeout") or PROBE_TIMEOUT_SECONDS), PROBE_TIMEOUT_SECONDS)
        psycopg.connect(
            host=s.get("HOST") or None,
            port=s.get("PORT") or None,
            user=s.get("USER") or None,
            password=s.get("PASSWORD") or None,
            dbname=s.get("NAME") or "postgres",
            connect_timeout=max(timeout, 1),
            application_name="switchyard:probe",
        ).close()

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        breaker = breaker_for(self.alias, self.settings_dict)
        try:
            breaker.allow(self._probe)
        except BreakerOpen as exc:
            raise psycopg.OperationalError(str(exc)) from exc
        try:
            connection = super().get_new_connection(conn_params)
        except psycopg.Error as exc:
            breaker.failure(exc)
            raise
        breaker.success()
        return connection
