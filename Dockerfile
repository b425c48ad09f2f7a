# syntax=docker/dockerfile:1
# Switchyard images, one Dockerfile, one target each (docker-compose.yml builds all four):
#   docker build -t switchyard .                                  # web (the last stage): gunicorn on :8000
#   docker build --target scheduler -t switchyard-scheduler .     # supercronic running docker/scheduler/crontab
#   docker build --target proxy -t switchyard-proxy .             # nginx (official image) + the collected static files
#   docker run --env-file app.env switchyard python manage.py migrate_all   # migrations: a separate, one-shot command
# Configuration comes only from the environment (core/settings.py, core/db_config.py): SECRET_KEY,
# DATABASE_URL, USERS_DATABASE_URL, ANALYTICS_DATABASE_URL, LEGACY_DATABASE_URL, *_REPLICA_URLS, ...
# Base images are pinned to a release; add @sha256:<digest> from your registry when you mirror them.

ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm
ARG NGINX_IMAGE=nginx:1.26.2-bookworm

# ---- builder: compile every wheel (mysqlclient needs the MariaDB client headers) ---------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt constraints.txt ./
RUN pip wheel --wheel-dir /wheels -r requirements.txt -c constraints.txt

# ---- supercronic: cron for containers (runs as any user, passes the environment, logs to stdout)
FROM ${PYTHON_IMAGE} AS supercronic
ARG SUPERCRONIC_VERSION=v0.2.29
# SHA-1 of supercronic-linux-amd64 as published with that release.
ARG SUPERCRONIC_SHA1SUM=cd48d45c4b10f3f0bfdd3a57d054cd05ac96812b
RUN python -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], '/supercronic')" \
      "https://github.com/aptible/supercronic/releases/download/${SUPERCRONIC_VERSION}/supercronic-linux-amd64" \
 && echo "${SUPERCRONIC_SHA1SUM}  /supercronic" | sha1sum -c - \
 && chmod 0755 /supercronic

# ---- runtime: the wheels, the MariaDB client library, the code; no compiler ------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=core.settings \
    SWITCHYARD_VAR_DIR=/app/var \
    STATIC_ROOT=/app/static \
    BIND=0.0.0.0:8000
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 switchyard \
 && useradd --system --uid 10001 --gid switchyard --home-dir /app --no-create-home --shell /usr/sbin/nologin switchyard
COPY --from=builder /wheels /wheels
COPY requirements.txt constraints.txt /tmp/reqs/
RUN pip install --no-index --find-links=/wheels -r /tmp/reqs/requirements.txt -c /tmp/reqs/constraints.txt \
 && rm -rf /wheels /tmp/reqs
WORKDIR /app
COPY --chown=root:root . /app
# Static files collected with hashed names and .gz copies, in the image (read-only): the proxy
# image copies the same directory, and the manifest there makes the service link the hashed
# names. (collectstatic reads settings only: the SECRET_KEY here is a build-time placeholder that
# no running process uses.)
RUN SECRET_KEY=collectstatic-build-only STATIC_HASHED_NAMES=1 python manage.py collectstatic --noinput --verbosity 0
# Only var/ (SQLite files of the embedded default, e.g. cache_db) is writable by the service.
RUN mkdir -p /app/var && chown switchyard:switchyard /app/var
USER switchyard:switchyard
EXPOSE 8000
# Liveness: GET /health (no database). curl is not in the image; python is. The Host header is the
# first of ALLOWED_HOSTS so that Django accepts the probe whatever the deployment's host names are.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as u; h = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.').replace('*', 'localhost') or 'localhost'; r = u.urlopen(u.Request('http://127.0.0.1:8000/health', headers={'Host': h}), timeout=4); sys.exit(0 if r.status == 200 else 1)"]
# Exec form: gunicorn is PID 1 and gets SIGTERM itself (graceful shutdown, GUNICORN_GRACEFUL_TIMEOUT).
CMD ["gunicorn", "--config", "gunicorn.conf.py", "core.wsgi:application"]

# ---- scheduler: recover_sagas every 5 minutes, the daily maintenance (docker/scheduler/crontab) --
FROM runtime AS scheduler
COPY --from=supercronic /supercronic /usr/local/bin/supercronic
HEALTHCHECK NONE
CMD ["supercronic", "-passthrough-logs", "/app/docker/scheduler/crontab"]

# ---- proxy: the official nginx image, Switchyard's configuration and static files ------------
FROM ${NGINX_IMAGE} AS proxy
# Rendered by the image's entrypoint (envsubst of the NGINX_* variables) into conf.d/default.conf.
COPY docker/nginx/switchyard.conf.template /etc/nginx/templates/default.conf.template
COPY docker/nginx/errors /srv/switchyard/errors
COPY --from=runtime /app/static /srv/switchyard/static
ENV NGINX_LISTEN=80 \
    NGINX_STATIC_ROOT=/srv/switchyard/static \
    NGINX_ERRORS_ROOT=/srv/switchyard/errors \
    NGINX_MAX_BODY_BYTES=5242880 \
    NGINX_BATCH_MAX_BODY_BYTES=33554432 \
    NGINX_CLIENT_HEADER_TIMEOUT=10 \
    NGINX_CLIENT_BODY_TIMEOUT=10 \
    NGINX_PROXY_READ_TIMEOUT=35 \
    NGINX_ENVSUBST_FILTER=^NGINX_
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1/static/rest_framework/css/bootstrap.min.css"]

# ---- web (default target): the service ---------------------------------------------------------
FROM runtime AS web
