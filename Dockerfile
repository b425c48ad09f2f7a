# syntax=docker/dockerfile:1
# Switchyard image: gunicorn serving core.wsgi on port 8000.
#   docker build -t switchyard .
#   docker run --env-file app.env switchyard python manage.py migrate_all   # migrations: a separate, one-shot command
#   docker run --env-file app.env -p 8000:8000 switchyard                   # the service (gunicorn, gunicorn.conf.py)
# Configuration comes only from the environment (core/settings.py, core/db_config.py): SECRET_KEY,
# DATABASE_URL, USERS_DATABASE_URL, ANALYTICS_DATABASE_URL, LEGACY_DATABASE_URL, *_REPLICA_URLS, ...

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

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

# ---- runtime: the wheels, the MariaDB client library, the code; no compiler ------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=core.settings \
    SWITCHYARD_VAR_DIR=/app/var \
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
