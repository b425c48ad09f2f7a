"""Switchyard settings. Everything that differs between machines comes from the environment.

Each section names the environment variables it reads and links to the Django docs for it.
Settings are read here, once, at start-up; application code reads ``django.conf.settings``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from core import aliases, db_config

ENV = os.environ
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(ENV.get("SWITCHYARD_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool = False) -> bool:
    return db_config._bool(ENV, name, default)


def _env_int(name: str, default: int) -> int:
    return db_config._int(ENV, name, default)


def _env_float(name: str, default: float) -> float:
    return db_config._float(ENV, name, default)


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in ENV.get(name, default).split(",") if item.strip()]


# ---------------------------------------------------------------------------------------------
# Core: DEBUG, SECRET_KEY, hosts
# https://docs.djangoproject.com/en/5.2/ref/settings/#core-settings
# ---------------------------------------------------------------------------------------------
DEBUG = _env_bool("DJANGO_DEBUG", False)
SECRET_KEY = ENV.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment (or DJANGO_DEBUG=1).")
    # Development only: a random key per process, never a key written in the code.
    SECRET_KEY = secrets.token_urlsafe(50)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")
# Bodies larger than this are refused with 413 (bytes).
DATA_UPLOAD_MAX_MEMORY_SIZE = _env_int("MAX_BODY_BYTES", 5 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20_000

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "core.apps.CoreConfig",
    "core.users.apps.UsersConfig",
    "core.blog.apps.BlogConfig",
    "core.analytics.apps.AnalyticsConfig",
    "core.legacy.apps.LegacyConfig",
    "core.cache.apps.CacheConfig",
    "api.apps.ApiConfig",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "routers.middleware.RoutingStateMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------------------------------------
# Databases: DATABASE_URL, USERS_DATABASE_URL, ANALYTICS_DATABASE_URL, LEGACY_DATABASE_URL,
# CACHE_DATABASE_URL, <PRIMARY>_REPLICA_URLS, DB_POOL*, DB_CONNECT_TIMEOUT (see core/db_config.py)
# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
# ---------------------------------------------------------------------------------------------
DATABASES = db_config.build_databases(ENV, VAR_DIR)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Routers, in the order Django asks them (the first answer that is not None wins):
# 1. TimeSeriesRouter: models of the ``timeseries`` app label, by month; silent when no
#    monthly aliases are configured.
# 2. PrimaryReplicaRouter: app label -> primary alias (one table), replica reads, read-your-writes
#    pinning, legacy write protection, migrate and relation rules. It answers everything else.
# https://docs.djangoproject.com/en/5.2/topics/db/multi-db/#using-routers
DATABASE_ROUTERS = [
    "routers.timeseries.TimeSeriesRouter",
    "routers.primary.PrimaryReplicaRouter",
]
# Reads stay on the primary for this many seconds after a write by the same client (cookie).
REPLICA_PIN_SECONDS = _env_float("REPLICA_PIN_SECONDS", 5.0)
REPLICA_PIN_COOKIE = "switchyard_pin"
REPLICA_PIN_HEADER = "X-Switchyard-Pin"
# A replica that failed a health check is skipped for this many seconds.
REPLICA_HEALTH_WINDOW_SECONDS = _env_float("REPLICA_HEALTH_WINDOW_SECONDS", 10.0)
# The legacy customers database is read-only unless this is set.
LEGACY_ALLOW_WRITES = _env_bool("LEGACY_ALLOW_WRITES", False)
# Time-based routing: aliases named by this pattern (e.g. timeseries_2026_11).
TIMESERIES_ALIAS_PATTERN = ENV.get("TIMESERIES_ALIAS_PATTERN", "timeseries_{year:04d}_{month:02d}")

# ---------------------------------------------------------------------------------------------
# Cache: CACHE_URL (Redis) or a database cache table on cache_db
# https://docs.djangoproject.com/en/5.2/topics/cache/
# ---------------------------------------------------------------------------------------------
CACHE_TABLE = "switchyard_cache"
if ENV.get("CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": ENV["CACHE_URL"],
            "KEY_PREFIX": ENV.get("CACHE_KEY_PREFIX", "switchyard"),
            "TIMEOUT": _env_int("CACHE_TIMEOUT", 300),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": CACHE_TABLE,
            "TIMEOUT": _env_int("CACHE_TIMEOUT", 300),
        }
    }
USER_STATS_CACHE_SECONDS = _env_int("USER_STATS_CACHE_SECONDS", 300)
STATS_CACHE_SECONDS = _env_int("STATS_CACHE_SECONDS", 5)

# ---------------------------------------------------------------------------------------------
# Aggregates: fan-out across databases (core/services/fanout.py) and cached figures.
# FANOUT_MAX_WORKERS: threads of the one process-wide pool that runs the per-database queries.
# FANOUT_BUDGET_SECONDS: each source's time budget, enforced by the database (PostgreSQL
# statement_timeout, MariaDB max_statement_time, SQLite progress handler); per alias with
# FANOUT_BUDGET_<ALIAS>_SECONDS (e.g. FANOUT_BUDGET_ANALYTICS_DB_SECONDS).
# FANOUT_GRACE_SECONDS: how long past its budget the request waits for a source before it
# answers without it (covers connecting and the database noticing the timeout).
# STATS_CACHE_SECONDS / USER_STATS_CACHE_SECONDS (cache section above): lifetime of cached stats.
# https://docs.python.org/3/library/concurrent.futures.html#threadpoolexecutor
# ---------------------------------------------------------------------------------------------
FANOUT_MAX_WORKERS = _env_int("FANOUT_MAX_WORKERS", 8)
if FANOUT_MAX_WORKERS < 1:
    raise ImproperlyConfigured("FANOUT_MAX_WORKERS must be at least 1")
FANOUT_BUDGET_SECONDS = _env_float("FANOUT_BUDGET_SECONDS", 2.0)
FANOUT_BUDGETS = {
    alias: _env_float(f"FANOUT_BUDGET_{alias.upper()}_SECONDS", FANOUT_BUDGET_SECONDS)
    for alias in aliases.PRIMARIES
}
FANOUT_GRACE_SECONDS = _env_float("FANOUT_GRACE_SECONDS", 0.25)
# FANOUT_MAX_PER_SOURCE: parts of one source in the pool at once (a bulkhead). A source that is
# slow holds its workers for its whole budget; past this many, its further parts are degraded at
# once instead of queueing, so the pool keeps threads for the other sources.
FANOUT_MAX_PER_SOURCE = _env_int("FANOUT_MAX_PER_SOURCE", max(1, FANOUT_MAX_WORKERS // 2))

# ---------------------------------------------------------------------------------------------
# Auth
# https://docs.djangoproject.com/en/5.2/ref/settings/#auth
# ---------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ---------------------------------------------------------------------------------------------
# Internationalisation and static files
# https://docs.djangoproject.com/en/5.2/topics/i18n/ , /howto/static-files/
# ---------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# ---------------------------------------------------------------------------------------------
# REST framework and OpenAPI
# https://www.django-rest-framework.org/api-guide/settings/
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
# ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchyard API",
    "DESCRIPTION": "One REST API over many databases.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# ---------------------------------------------------------------------------------------------
# CORS: CORS_ALLOWED_ORIGINS (comma list; none by default)
# https://github.com/adamchainz/django-cors-headers#configuration
# ---------------------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = _env_list("CORS_ALLOWED_ORIGINS")
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Server-Timing"]

# ---------------------------------------------------------------------------------------------
# Logging
# https://docs.djangoproject.com/en/5.2/topics/logging/
# ---------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": ENV.get("LOG_LEVEL", "INFO")},
}
