"""gunicorn configuration: ``gunicorn --config gunicorn.conf.py core.wsgi:application``.

Environment (read here because gunicorn reads this file before Django starts):
  BIND (0.0.0.0:8000; a comma list listens on each), WEB_CONCURRENCY (workers, default 2), GUNICORN_THREADS (threads per worker,
  default 4), GUNICORN_TIMEOUT (30 s: a worker silent that long is killed and replaced),
  GUNICORN_GRACEFUL_TIMEOUT (20 s: on SIGTERM, in-flight requests get this long to finish),
  GUNICORN_KEEPALIVE (5 s), GUNICORN_MAX_REQUESTS (0 = never recycle workers) and
  GUNICORN_MAX_REQUESTS_JITTER, FORWARDED_ALLOW_IPS (proxies trusted for X-Forwarded-*; a UNIX
  socket peer, the proxy of `scripts/serve --proxy`, is always trusted), GUNICORN_LIMIT_REQUEST_*,
  LOG_LEVEL, PROMETHEUS_MULTIPROC_DIR (metrics shared by the workers; a fresh temporary
  directory when unset).

Workers are gthread: Django's ORM is synchronous and each thread holds at most one connection per
alias (from the psycopg pool of its worker process), so WEB_CONCURRENCY x GUNICORN_THREADS bounds
the concurrent requests and DB_POOL_MAX_SIZE should be >= GUNICORN_THREADS.
Docs: https://docs.gunicorn.org/en/stable/settings.html
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from prometheus_client import multiprocess

from core.logging import JSONFormatter


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


wsgi_app = "core.wsgi:application"
# One address or a comma list: behind the proxy an instance listens on its UNIX socket for nginx and,
# for Prometheus, on an address of its own (scripts/proxy with SERVE_METRICS_PORTS).
bind = [address.strip() for address in os.environ.get("BIND", "0.0.0.0:8000").split(",") if address.strip()]


def _metrics_exposed_without_token(bind_address: str) -> bool:
    """Metrics on, no METRICS_TOKEN, and a listening address other hosts can reach."""
    on = os.environ.get("METRICS_ENABLED", "").strip().lower() in {"1", "true", "yes", "on"}
    if not on or os.environ.get("METRICS_TOKEN", "").strip():
        return False
    if bind_address.startswith("unix:"):
        return False
    host = bind_address.rsplit(":", 1)[0].strip("[]")
    return host not in {"127.0.0.1", "localhost", "::1"}


for _address in bind:
    if _metrics_exposed_without_token(_address):
        raise SystemExit(
            f"METRICS_ENABLED=1 on {_address} needs METRICS_TOKEN (or bind to loopback / a UNIX socket behind the proxy)"
        )
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", 2)
threads = _int("GUNICORN_THREADS", 4)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 0)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Heartbeat files in memory, not on a (possibly slow, overlay) disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Limits on the request line and headers (defaults made explicit). Behind the proxy
# (`scripts/serve --proxy`, compose) nginx bounds the request line and the headers (8 KB a line,
# 32 KB in all) and answers its own Problem Details; these are then raised
# (GUNICORN_LIMIT_REQUEST_LINE=0, GUNICORN_LIMIT_REQUEST_FIELDS=32768,
# GUNICORN_LIMIT_REQUEST_FIELD_SIZE=0) so that gunicorn's HTML 400 never reaches a client.
limit_request_line = _int("GUNICORN_LIMIT_REQUEST_LINE", 8190)
limit_request_fields = _int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
limit_request_field_size = _int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 8190)

# Logs: everything to stderr as JSON; the access line carries the request id and the per-alias
# query time left in the WSGI environ by core.logging.leave_access_facts (api.middleware.RequestMiddleware).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logger_class = "core.logging.GunicornLogger"
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JSONFormatter}},
    "handlers": {
        "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}

# Prometheus multiprocess mode: every worker writes its samples under this directory and /metrics
# sums them. It must be set before any worker imports prometheus_client, that is here.
# (This file is read again on SIGHUP, in the same master process: the directory stays the same.)
_own_metrics_dir = os.path.join(tempfile.gettempdir(), f"switchyard-metrics-{os.getpid()}")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _own_metrics_dir)


def on_starting(server: Any) -> None:
    """Start from an empty metrics directory (samples of a previous run are stale)."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and name.endswith(".db"):
            os.remove(path)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its live gauges no longer count. (``multiprocess`` is imported when this
    file loads: importing it here, inside the master's SIGCHLD handling, could interrupt another
    import of the same module and find it half-initialised.)"""
    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """Graceful shutdown of a worker: close its database connections and pools."""
    try:
        from django.db import connections

        for connection in connections.all(initialized_only=True):
            connection.close()
        # The psycopg pools are per process (shared by the worker's threads), one per alias.
        from core.db_backends.postgresql.base import close_pools

        close_pools()
    except Exception as exc:  # noqa: BLE001 - never block a worker's exit
        server.log.warning("closing database connections on worker exit failed: %s", exc)


def on_exit(server: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") == _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
