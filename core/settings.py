"""Switchyard settings. Everything that differs between machines comes from the environment.

Each section names the environment variables it reads and links to the Django docs for it.
Settings are read here, once, at start-up; application code reads ``django.conf.settings``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import warnings
from pathlib import Path

from corsheaders.defaults import default_headers as cors_default_headers
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
# (Django's test client's "testserver" is not among the defaults: the test settings add it.)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")
# Bodies larger than this are refused with 413 (bytes), on every endpoint but the events batch.
MAX_BODY_BYTES = _env_int("MAX_BODY_BYTES", 5 * 1024 * 1024)
# POST /api/v1/analytics/events/batch/ only: its own cap, so that a full batch (10,000 events of a
# few hundred bytes each) fits.
BATCH_MAX_BODY_BYTES = _env_int("BATCH_MAX_BODY_BYTES", 32 * 1024 * 1024)
# Django's own cap (request.body, which DRF reads) is the largest any endpoint accepts; the
# per-endpoint caps above are enforced by api.middleware.BodyLimitMiddleware (announced length)
# and api.parsers.JSONParser (bytes actually read).
DATA_UPLOAD_MAX_MEMORY_SIZE = max(MAX_BODY_BYTES, BATCH_MAX_BODY_BYTES)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20_000
# Levels of arrays and objects a JSON body may nest (api.parsers): deeper is a 400 on every endpoint.
# At most 200: answers hold a body's values a few levels deeper still, and stay within what the
# answer's encoder (orjson: 254 levels) writes.
JSON_MAX_DEPTH = _env_int("JSON_MAX_DEPTH", 32)
if not 1 <= JSON_MAX_DEPTH <= 200:
    raise ImproperlyConfigured(f"JSON_MAX_DEPTH must be 1 to 200, not {JSON_MAX_DEPTH}.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # kept for its migrations: core.tokens 0002 hashed its keys away
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
    "core.tokens.apps.TokensConfig",
    "api.apps.ApiConfig",
]

MIDDLEWARE = [
    # The frame of every request (api/middleware.py): request id, routing state, Server-Timing,
    # log context and access facts, metrics. Outermost, so that every answer carries
    # X-Request-ID, even a CORS preflight, a redirect or an early 411/413.
    "api.middleware.RequestMiddleware",
    # gzip for answers of 1 KB and more (not /admin/), before anything else reads or writes the body
    # on its way out; the access line counts the bytes sent. Behind nginx, the proxy compresses.
    "api.middleware.CompressionMiddleware",
    # Next, so that every answer carries the same security headers, the early ones (411, 413,
    # 400 for a bad Host) included, and the HTTPS redirect comes before anything else (issue 10).
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # A chunked write body (no Content-Length) is a 411 before anything reads it as empty; an
    # announced length over the endpoint's cap a 413 before anything reads it at all.
    "api.middleware.BodyLimitMiddleware",
    # Static files (the API docs' Swagger UI/ReDoc assets) from the process itself, under gunicorn too.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A write to /api/...<no slash> is a 308 (method and body kept), before CommonMiddleware's 301.
    "api.middleware.PermanentRedirectSlashMiddleware",
    "django.middleware.common.CommonMiddleware",
    # DRF's views are exempt (token authentication); kept for every other view that might take a
    # form (the admin protects its own as well).
    "django.middleware.csrf.CsrfViewMiddleware",
    # Sessions, the signed-in account and messages: for /admin/ only (the API keeps no session).
    "api.middleware.AdminSessionMiddleware",
    # Innermost: a key this process remembers as refused is answered before DRF builds its request,
    # with DRF's own 401/429 (api/middleware.py; the failure budget charged as DRF's path charges it).
    "api.middleware.RefusedKeyMiddleware",
]
# Django's session, authentication and message middlewares run inside
# api.middleware.AdminSessionMiddleware, for /admin/ only (see its doc); the admin's checks look
# for them by name in MIDDLEWARE.
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]

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
# After a database refuses a connection, opening connections to it fails at once for this many
# seconds (then one probe on a fresh connection decides); see core/db_backends.
DB_BREAKER_SECONDS = _env_float("DB_BREAKER_SECONDS", 2.0)
# A PostgreSQL connection kept per thread is checked by a socket poll at the start of a request,
# and with a round trip when it has not answered one for this many seconds (core/db_backends).
DB_CHECK_AFTER_IDLE_SECONDS = _env_float("DB_CHECK_AFTER_IDLE_SECONDS", 5.0)
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
# Analytics archive: cold months on their own databases (docs/analytics.md).
# TIMESERIES_DATABASE_URL: a URL template with {year} and {month}
# (postgres://app@archive:5432/events_{year:04d}_{month:02d}); TIMESERIES_FIRST_MONTH: YYYY-MM.
# With both, one alias per month (named by TIMESERIES_ALIAS_PATTERN) from the first month to the
# current one (as of the process's start), read and written through routers.timeseries.
# ---------------------------------------------------------------------------------------------
TIMESERIES_DATABASE_URL = ENV.get("TIMESERIES_DATABASE_URL", "").strip()
TIMESERIES_FIRST_MONTH = ENV.get("TIMESERIES_FIRST_MONTH", "").strip()
DATABASES.update(
    db_config.monthly_databases(ENV, TIMESERIES_DATABASE_URL, TIMESERIES_FIRST_MONTH, TIMESERIES_ALIAS_PATTERN)
)

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
# Analytics events timed more than this far ahead of the server's clock are refused (400).
EVENT_MAX_FUTURE_SECONDS = _env_int("EVENT_MAX_FUTURE_SECONDS", 86_400)
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
    alias: _env_float(f"FANOUT_BUDGET_{alias.upper()}_SECONDS", FANOUT_BUDGET_SECONDS) for alias in aliases.PRIMARIES
}
FANOUT_GRACE_SECONDS = _env_float("FANOUT_GRACE_SECONDS", 0.25)
# FANOUT_MAX_PER_SOURCE: parts of one source in the pool at once (a bulkhead). A source that is
# slow holds its workers for its whole budget; past this many, its further parts are degraded at
# once instead of queueing, so the pool keeps threads for the other sources.
FANOUT_MAX_PER_SOURCE = _env_int("FANOUT_MAX_PER_SOURCE", max(1, FANOUT_MAX_WORKERS // 2))

# ---------------------------------------------------------------------------------------------
# Writes across databases and data operations: sagas, Idempotency-Key, user deletion, sync,
# maintenance. SAGA_STEP_TIMEOUT_MS, SAGA_RECOVERY_AFTER_SECONDS, IDEMPOTENCY_TTL_SECONDS,
# IDEMPOTENCY_IN_PROGRESS_SECONDS, USER_DELETION_ANALYTICS, SYNC_BATCH_SIZE, SYNC_CACHE_SECONDS,
# ANALYTICS_RETENTION_DAYS, DBMAINT_BATCH_SIZE, DBMAINT_REQUIRED_ALIASES (see docs/sagas.md)
# https://docs.djangoproject.com/en/5.2/topics/db/transactions/
# ---------------------------------------------------------------------------------------------
# Each saga step's lock wait and statement time limit (PostgreSQL lock_timeout/statement_timeout,
# SQLite busy timeout); a step that waits longer fails and the saga compensates.
SAGA_STEP_TIMEOUT_MS = _env_int("SAGA_STEP_TIMEOUT_MS", 5000)
# recover_sagas treats a saga untouched for this long as abandoned by a dead process.
SAGA_RECOVERY_AFTER_SECONDS = _env_int("SAGA_RECOVERY_AFTER_SECONDS", 300)
# An Idempotency-Key is remembered (and its first answer replayed) for this long.
IDEMPOTENCY_TTL_SECONDS = _env_int("IDEMPOTENCY_TTL_SECONDS", 86400)
# A key claimed by a request that has not answered after this long (its process died) is taken over.
IDEMPOTENCY_IN_PROGRESS_SECONDS = _env_int("IDEMPOTENCY_IN_PROGRESS_SECONDS", 120)
# Deleting a user: "anonymise" sets user_id to NULL on their analytics events, "delete" removes them.
USER_DELETION_ANALYTICS = ENV.get("USER_DELETION_ANALYTICS", "anonymise").strip().lower()
if USER_DELETION_ANALYTICS not in {"anonymise", "delete"}:
    raise ImproperlyConfigured("USER_DELETION_ANALYTICS must be 'anonymise' or 'delete'.")
# sync_users: users per batch, and how long the cache entries it writes (user:<id>:summary) live.
SYNC_BATCH_SIZE = _env_int("SYNC_BATCH_SIZE", 500)
SYNC_CACHE_SECONDS = _env_int("SYNC_CACHE_SECONDS", 7 * 86400)
# dbmaint: analytics events older than this many days are deleted, this many rows per statement.
ANALYTICS_RETENTION_DAYS = _env_int("ANALYTICS_RETENTION_DAYS", 90)
DBMAINT_BATCH_SIZE = _env_int("DBMAINT_BATCH_SIZE", 5000)
# dbmaint --health-check exits non-zero when one of these aliases is down (replicas are reported only).
DBMAINT_REQUIRED_ALIASES = _env_list("DBMAINT_REQUIRED_ALIASES", "default,users_db,analytics_db,legacy_db,cache_db")

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
STATIC_ROOT = Path(ENV["STATIC_ROOT"]) if ENV.get("STATIC_ROOT") else VAR_DIR / "static"  # (the image: /app/static)
# WhiteNoise serves STATIC_ROOT (collectstatic) and, when not collected, straight from the apps.
WHITENOISE_USE_FINDERS = True
# Without collectstatic the finders serve the files; WhiteNoise's warning about the missing
# STATIC_ROOT is then noise (and would break the JSON log lines).
warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)

# ---------------------------------------------------------------------------------------------
# Static files behind the proxy (issue 13): collectstatic with hashed names and .gz copies, served
# by nginx with a year's Cache-Control. STATIC_HASHED_NAMES=1 for collectstatic (scripts/serve,
# the image); afterwards on by itself while STATIC_ROOT holds the manifest (staticfiles.json).
# ---------------------------------------------------------------------------------------------
STATIC_HASHED_NAMES = _env_bool("STATIC_HASHED_NAMES", (STATIC_ROOT / "staticfiles.json").is_file())
if STATIC_HASHED_NAMES:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# ---------------------------------------------------------------------------------------------
# REST framework and OpenAPI
# https://www.django-rest-framework.org/api-guide/settings/
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
# ---------------------------------------------------------------------------------------------
# Page counts of at least LIST_COUNT_CACHE_MIN_ROWS rows are reused for LIST_COUNT_CACHE_SECONDS
# by each process (a COUNT(*) of a big table is most of a page's cost); smaller ones are exact.
# A valid API token's user is remembered by each process for API_TOKEN_CACHE_SECONDS (0: looked
# up on every request); a token or user changed in one process is forgotten there at once, in
# the others within that time (api/authentication.py).
API_TOKEN_CACHE_SECONDS = _env_float("API_TOKEN_CACHE_SECONDS", 5.0)
LIST_COUNT_CACHE_SECONDS = _env_float("LIST_COUNT_CACHE_SECONDS", 2.0)
LIST_COUNT_CACHE_MIN_ROWS = _env_int("LIST_COUNT_CACHE_MIN_ROWS", 10_000)
# What a list's `?search=` may ask (api/filters.py): at most SEARCH_MAX_LENGTH characters in all,
# SEARCH_MAX_TERMS terms (split on spaces and commas) of at most SEARCH_MAX_TERM_LENGTH characters
# each; beyond them a 400 on `search`. Every list's queries (its COUNT(*) and its page) run with a
# statement timeout of LIST_STATEMENT_TIMEOUT_MS on PostgreSQL and MariaDB (0: none); a list that
# runs out of it answers 503 `query-timeout` (core/statement_timeout.py).
SEARCH_MAX_LENGTH = _env_int("SEARCH_MAX_LENGTH", 200)
SEARCH_MAX_TERMS = _env_int("SEARCH_MAX_TERMS", 8)
SEARCH_MAX_TERM_LENGTH = _env_int("SEARCH_MAX_TERM_LENGTH", 50)
LIST_STATEMENT_TIMEOUT_MS = _env_int("LIST_STATEMENT_TIMEOUT_MS", 3000)
if min(SEARCH_MAX_LENGTH, SEARCH_MAX_TERMS, SEARCH_MAX_TERM_LENGTH) < 1 or LIST_STATEMENT_TIMEOUT_MS < 0:
    raise ImproperlyConfigured("SEARCH_MAX_* must be at least 1 and LIST_STATEMENT_TIMEOUT_MS at least 0")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ScopedTokenAuthentication"],
    # A token holding the operation's scope (api.permissions; docs/security.md).
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasScope"],
    # DRF's JSON renderer with the encoding done by orjson: the same bytes (api/renderers.py).
    "DEFAULT_RENDERER_CLASSES": ["api.renderers.JSONRenderer"],
    # DRF's negotiation with the common request (no format, Accept absent, */* or JSON) answered
    # without parsing (api/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.negotiation.ContentNegotiation",
    # JSON only, with the body size cap of DATA_UPLOAD_MAX_MEMORY_SIZE enforced (413).
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "openapi.schema.AutoSchema",
    # OPTIONS describes each write with the serializer it reads (issue 15; api/metadata.py).
    "DEFAULT_METADATA_CLASS": "api.metadata.InputMetadata",
    "DEFAULT_FILTER_BACKENDS": ["api.filters.FilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "UNAUTHENTICATED_USER": None,
    # Every error answers Problem Details (application/problem+json).
    "EXCEPTION_HANDLER": "api.exceptions.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Requests per token: API_THROTTLE_RATE, "<n>/<second|minute|hour|day>".
        "token": ENV.get("API_THROTTLE_RATE", "1200/minute"),
    },
}
# Where the throttle counts live: the shared cache when CACHE_URL (Redis) is set, otherwise (empty)
# each process's memory (never the SQLite cache table: one write per request would be too dear).
# A full garbage collection once the large answers (1 MiB and more) of a process since the last
# one add up to this many bytes (0: never): what a DRF answer holds is freed only by the cyclic
# collector (api.middleware.LargeAnswers; bench/README.md, "List answer size and worker memory").
LARGE_ANSWER_GC_BYTES = int(ENV.get("LARGE_ANSWER_GC_BYTES", str(32 * 1024 * 1024)))
API_THROTTLE_CACHE = ENV.get("API_THROTTLE_CACHE", "default" if ENV.get("CACHE_URL") else "")
# Failed authentications (401 for a malformed, unknown, revoked or expired key) per client address:
# API_AUTH_FAILURE_RATE, "<n>/<second|minute|hour|day>" (empty: no budget); beyond it a 429, answered
# before any database query (api/throttling.py). Kept where the token budgets are (API_THROTTLE_CACHE).
API_AUTH_FAILURE_RATE = ENV.get("API_AUTH_FAILURE_RATE", "60/minute").strip()
if API_AUTH_FAILURE_RATE and not re.fullmatch(
    r"[1-9]\d*/(s|sec|second|m|min|minute|h|hour|d|day)", API_AUTH_FAILURE_RATE
):
    raise ImproperlyConfigured("API_AUTH_FAILURE_RATE must be '<n>/<second|minute|hour|day>' (e.g. 60/minute) or empty")
# The client address of a request is the peer's, or the last X-Forwarded-For address when the peer is
# one of these proxies: FORWARDED_ALLOW_IPS, the comma list gunicorn.conf.py reads for X-Forwarded-Proto
# (addresses or networks, "*" for any peer; a UNIX-socket peer is always a proxy).
FORWARDED_ALLOW_IPS = _env_list("FORWARDED_ALLOW_IPS", "127.0.0.1")
for _entry in FORWARDED_ALLOW_IPS:
    if _entry != "*":
        try:
            ipaddress.ip_network(_entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"FORWARDED_ALLOW_IPS: {_entry!r} is not an address, a network or '*'") from None
# Keys refused by the database (unknown, revoked, an inactive account) are remembered by their
# SHA-256 digest, so that they are refused again without a query: at most API_REFUSED_TOKEN_ENTRIES
# per process (least recently seen out), each for API_REFUSED_TOKEN_SECONDS (0: not remembered), and
# in API_TOKEN_REVOCATION_CACHE (Redis) for the same time when it is set (api/authentication.py).
API_REFUSED_TOKEN_SECONDS = _env_float("API_REFUSED_TOKEN_SECONDS", 60.0)
API_REFUSED_TOKEN_ENTRIES = _env_int("API_REFUSED_TOKEN_ENTRIES", 10_000)
if API_REFUSED_TOKEN_ENTRIES < 1:
    raise ImproperlyConfigured("API_REFUSED_TOKEN_ENTRIES must be at least 1")


# ---------------------------------------------------------------------------------------------
# Sizes of what clients send and of the lists they read (docs/api.md, "Limits"). Read by the
# serializers at validation time (api/serializers/fields.py, api/limits.py), and by the schema.
# A text bound that a column also bounds may be lowered, never raised past the column's width.
# LIST_MAX_ANSWER_BYTES: the most a page of any list may weigh with maximal rows; a list whose
# maximal rows would pass it at 200 a page gets a smaller maximal page_size (api/limits.py).
# ---------------------------------------------------------------------------------------------
POST_TITLE_MAX_CHARS = _env_int("POST_TITLE_MAX_CHARS", 200)
POST_CONTENT_MAX_CHARS = _env_int("POST_CONTENT_MAX_CHARS", 65_536)
USER_USERNAME_MAX_CHARS = _env_int("USER_USERNAME_MAX_CHARS", 150)
USER_EMAIL_MAX_CHARS = _env_int("USER_EMAIL_MAX_CHARS", 254)
USER_NAME_MAX_CHARS = _env_int("USER_NAME_MAX_CHARS", 150)
PROFILE_BIO_MAX_CHARS = _env_int("PROFILE_BIO_MAX_CHARS", 10_000)
PROFILE_AVATAR_URL_MAX_CHARS = _env_int("PROFILE_AVATAR_URL_MAX_CHARS", 500)
LEGACY_CUSTOMER_NAME_MAX_CHARS = _env_int("LEGACY_CUSTOMER_NAME_MAX_CHARS", 100)
LEGACY_CUSTOMER_EMAIL_MAX_CHARS = _env_int("LEGACY_CUSTOMER_EMAIL_MAX_CHARS", 100)
EVENT_TYPE_MAX_CHARS = _env_int("EVENT_TYPE_MAX_CHARS", 50)
EVENT_SESSION_ID_MAX_CHARS = _env_int("EVENT_SESSION_ID_MAX_CHARS", 100)
EVENT_DATA_MAX_BYTES = _env_int("EVENT_DATA_MAX_BYTES", 16 * 1024)
EVENT_DATA_MAX_PROPERTIES = _env_int("EVENT_DATA_MAX_PROPERTIES", 100)
EVENT_DATA_MAX_DEPTH = _env_int("EVENT_DATA_MAX_DEPTH", 8)
EVENT_BATCH_MAX_EVENTS = _env_int("EVENT_BATCH_MAX_EVENTS", 10_000)
EVENT_BATCH_MAX_DATA_BYTES = _env_int("EVENT_BATCH_MAX_DATA_BYTES", 16 * 1024 * 1024)
LIST_MAX_ANSWER_BYTES = _env_int("LIST_MAX_ANSWER_BYTES", 8_000_000)
# Each is at least 1, and a bound a column also bounds is at most the column's width.
_SIZE_COLUMNS = {
    "POST_TITLE_MAX_CHARS": 200,
    "POST_CONTENT_MAX_CHARS": None,
    "USER_USERNAME_MAX_CHARS": 150,
    "USER_EMAIL_MAX_CHARS": 254,
    "USER_NAME_MAX_CHARS": 150,
    "PROFILE_BIO_MAX_CHARS": None,
    "PROFILE_AVATAR_URL_MAX_CHARS": 500,
    "LEGACY_CUSTOMER_NAME_MAX_CHARS": 100,
    "LEGACY_CUSTOMER_EMAIL_MAX_CHARS": 100,
    "EVENT_TYPE_MAX_CHARS": 50,
    "EVENT_SESSION_ID_MAX_CHARS": 100,
    "EVENT_DATA_MAX_BYTES": None,
    "EVENT_DATA_MAX_PROPERTIES": None,
    "EVENT_DATA_MAX_DEPTH": None,
    "EVENT_BATCH_MAX_EVENTS": None,
    "EVENT_BATCH_MAX_DATA_BYTES": None,
    "LIST_MAX_ANSWER_BYTES": None,
}
for _name, _column in _SIZE_COLUMNS.items():
    _value = globals()[_name]
    if _value < 1 or (_column is not None and _value > _column):
        _ceiling = f" and at most {_column} (the column's width)" if _column is not None else ""
        raise ImproperlyConfigured(f"{_name} must be at least 1{_ceiling}, got {_value}")

# ---------------------------------------------------------------------------------------------
# Conditional requests (issue 11; api/conditional.py): single users, posts and legacy customers
# answer with a strong ETag; If-Match on PUT/PATCH/DELETE is a 412 when the resource changed.
# REQUIRE_IF_MATCH=1 makes If-Match mandatory on those writes (428 without it).
# ---------------------------------------------------------------------------------------------
REQUIRE_IF_MATCH = _env_bool("REQUIRE_IF_MATCH", False)

SPECTACULAR_SETTINGS = {
    "TITLE": "Switchyard API",
    "DESCRIPTION": (
        "One REST API over many databases.\n\n"
        "Authenticate with `Authorization: Token <key>` (`manage.py create_api_token USERNAME`); each "
        "operation names the token scope it needs (docs/security.md). "
        "Errors are Problem Details (`application/problem+json`). Every response carries "
        "`X-Request-ID` (echoed when the request sends a valid one: 1-128 characters of "
        "`A-Za-z0-9-_.:/+=`) and `Server-Timing` with one entry per database alias touched "
        "(`users_db;dur=1.8, default_replica_1;dur=0.9`, milliseconds). Every answer a throttle counted "
        "carries `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10: "
        '`"token";q=1200;w=60`, `"token";r=1187;t=11`); a 429 also `Retry-After`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No call to the public validator service: the docs page talks to this server only.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "persistAuthorization": True},
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "SORT_OPERATION_PARAMETERS": True,
    "ENUM_NAME_OVERRIDES": {},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "openapi.hooks.add_common_headers",
        "openapi.hooks.describe_token_scopes",
    ],
}

# ---------------------------------------------------------------------------------------------
# CORS: CORS_ALLOWED_ORIGINS (comma list; none by default)
# https://github.com/adamchainz/django-cors-headers#configuration
# ---------------------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = _env_list("CORS_ALLOWED_ORIGINS")
# Response headers browser code may read (issue 15): where a 201 put the resource, when to retry,
# whether an Idempotency-Key answer was replayed, the version for If-Match, the request id, the
# per-alias timings, the replica pin (sent back by a cross-origin frontend: see docs/api.md) and
# the rate limits (RateLimit-Policy, RateLimit).
CORS_EXPOSE_HEADERS = [
    "Location",
    "Retry-After",
    "Idempotent-Replayed",
    "ETag",
    "X-Request-ID",
    "Server-Timing",
    REPLICA_PIN_HEADER,
    "RateLimit-Policy",
    "RateLimit",
]
# Headers a browser client may send: the defaults (authorization, content-type, ...) plus ours.
CORS_ALLOW_HEADERS = (
    *cors_default_headers,
    "idempotency-key",
    "x-request-id",
    "if-match",
    "if-none-match",
    REPLICA_PIN_HEADER.lower(),
)

# ---------------------------------------------------------------------------------------------
# The contract for callers (issue 15; docs/api.md): tags in reading order with descriptions,
# component and enum names that read well in generated clients, a description on every property.
# ---------------------------------------------------------------------------------------------
SPECTACULAR_SETTINGS["TAGS"] = [
    {"name": "users", "description": "People (users_db). Personal fields are null without `pii:read`."},
    {"name": "posts", "description": "Blog posts (default), each embedding its author from users_db."},
    {"name": "analytics", "description": "Analytics events (analytics_db): one at a time, in batches, counted."},
    {
        "name": "legacy",
        "description": "Customers of the legacy MariaDB database; read-only unless `LEGACY_ALLOW_WRITES` is on.",
    },
    {
        "name": "aggregates",
        "description": "Answers that combine several databases (dashboard, stats, "
        "activity, reports); a missing optional source degrades the answer instead of failing it.",
    },
    {
        "name": "registrations",
        "description": "A user, their profile and a first event, written as one "
        "saga across three databases: all or nothing.",
    },
    {"name": "admin", "description": "Staff views of the databases: connections, pools, slow queries."},
    {"name": "operations", "description": "Probes and metrics for the platform (no token)."},
]
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    *SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"],
    "openapi.hooks.client_friendly_names",
    "openapi.hooks.describe_properties",
    "openapi.hooks.closed_request_bodies",
    "openapi.hooks.add_examples",
]

# ---------------------------------------------------------------------------------------------
# Logging
# https://docs.djangoproject.com/en/5.2/topics/logging/
# ---------------------------------------------------------------------------------------------
# LOG_LEVEL (INFO), LOG_FORMAT ("json": one JSON object per line with the request id and, on the
# access line, the per-alias query time; "text" for humans). See core/logging.py.
from core.logging import logging_config

LOG_FORMAT = ENV.get("LOG_FORMAT", "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'text'")
LOGGING = logging_config(level=ENV.get("LOG_LEVEL", "INFO"), fmt=LOG_FORMAT)

# ---------------------------------------------------------------------------------------------
# Operations (issue 6): readiness probe
# READINESS_TIMEOUT_SECONDS, READINESS_REQUIRED_ALIASES (comma list; default: every alias except
# legacy_db and cache_db, replicas included). A required alias that fails makes /health/ready 503;
# any other alias that fails is reported as "warn". With several app instances behind one load
# balancer, consider listing only the aliases without which no request can be served (the
# aggregates degrade without analytics_db; reads fall back from a replica to its primary).
# ---------------------------------------------------------------------------------------------
READINESS_TIMEOUT_SECONDS = _env_float("READINESS_TIMEOUT_SECONDS", 2.0)
if READINESS_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("READINESS_TIMEOUT_SECONDS must be positive")
from core import aliases as _aliases

_readiness_optional_default = {_aliases.LEGACY, _aliases.CACHE}
READINESS_REQUIRED_ALIASES = _env_list(
    "READINESS_REQUIRED_ALIASES",
    ",".join(alias for alias in DATABASES if alias not in _readiness_optional_default),
)
# The probes' status enum gets its own component name in the OpenAPI schema.
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["OpsHealthStatusEnum"] = ["pass", "warn", "fail"]
_unknown_required = [alias for alias in READINESS_REQUIRED_ALIASES if alias not in DATABASES]
if _unknown_required:
    raise ImproperlyConfigured(
        f"READINESS_REQUIRED_ALIASES names aliases that are not configured: {', '.join(_unknown_required)}"
    )

# ---------------------------------------------------------------------------------------------
# Operations (issue 6): request context for the logs, Prometheus metrics
# METRICS_ENABLED (off by default), METRICS_TOKEN (optional bearer token for /metrics).
# api.middleware.RequestMiddleware sets the logs' request id, leaves the access facts
# (core.logging.leave_access_facts) and, with METRICS_ENABLED, counts the request
# (api.metrics.record_request), all from the routing state's per-alias timings.
# https://prometheus.github.io/client_python/
# ---------------------------------------------------------------------------------------------
# After an outage, psycopg's pool retries connecting with an exponential back-off that is only
# bounded by its reconnect_timeout (300 s by default): a database back after 20 s could wait as long
# again before the pool tries it. Giving up sooner (and growing again on the next request) bounds
# the recovery time. DB_POOL_RECONNECT_TIMEOUT (seconds, default 5).
# https://www.psycopg.org/psycopg3/docs/api/pool.html#psycopg_pool.ConnectionPool
DB_POOL_RECONNECT_TIMEOUT = _env_float("DB_POOL_RECONNECT_TIMEOUT", 5.0)
for _database in DATABASES.values():
    _pool_options = _database.get("OPTIONS", {}).get("pool")
    if isinstance(_pool_options, dict):
        _pool_options.setdefault("reconnect_timeout", DB_POOL_RECONNECT_TIMEOUT)

METRICS_ENABLED = _env_bool("METRICS_ENABLED", False)
METRICS_TOKEN = ENV.get("METRICS_TOKEN", "")

# ---------------------------------------------------------------------------------------------
# Operations (issue 6): PostgreSQL tablespaces per database alias (see core/tablespaces.py)
# <PREFIX>_DEFAULT_TABLESPACE and <PREFIX>_DEFAULT_INDEX_TABLESPACE, PREFIX = the alias's URL
# variable without _URL: e.g. ANALYTICS_DATABASE_DEFAULT_INDEX_TABLESPACE=analytics_idx.
# https://docs.djangoproject.com/en/5.2/topics/db/tablespaces/
# ---------------------------------------------------------------------------------------------
from core import tablespaces as _tablespaces

DATABASE_TABLESPACES, DATABASE_INDEX_TABLESPACES = _tablespaces.from_env(ENV, DATABASES)
_tablespaces.apply(DATABASES, DATABASE_TABLESPACES)
# Django's global defaults stay empty; the per-alias index tablespace is swapped in while
# migrate runs on that alias.
DEFAULT_TABLESPACE = ""
BASE_DEFAULT_INDEX_TABLESPACE = DEFAULT_INDEX_TABLESPACE = ""

# ---------------------------------------------------------------------------------------------
# Security (issue 10): tokens, HTTPS, cookies, hosts. docs/security.md
# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-ssl-redirect , /howto/deployment/checklist/
# ---------------------------------------------------------------------------------------------
# Where processes share the generation that makes a revoked token refused by all of them at once
# (api/authentication.py): the cache alias, "default" when CACHE_URL (Redis) is set; empty: none
# (each process then honours a token it remembers for up to API_TOKEN_CACHE_SECONDS).
API_TOKEN_REVOCATION_CACHE = ENV.get("API_TOKEN_REVOCATION_CACHE", "default" if ENV.get("CACHE_URL") else "")
if API_TOKEN_REVOCATION_CACHE and API_TOKEN_REVOCATION_CACHE not in CACHES:
    raise ImproperlyConfigured("API_TOKEN_REVOCATION_CACHE names a cache that is not configured")
# DJANGO_HTTPS=1: served over HTTPS (behind a proxy that sets X-Forwarded-Proto). Turns on HSTS for
# a year with subdomains and preload, the redirect to HTTPS (but /health* and /metrics, asked over
# plain HTTP inside the network), secure session and CSRF cookies and trusting X-Forwarded-Proto from the proxy. Each
# can be set on its own: SECURE_HSTS_SECONDS, SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD,
# SECURE_SSL_REDIRECT, SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE, SECURE_PROXY_SSL_HEADER
# ("HTTP_X_FORWARDED_PROTO,https", or empty when no proxy strips and sets that header: a client
# could otherwise claim HTTPS).
DJANGO_HTTPS = _env_bool("DJANGO_HTTPS", False)
SECURE_HSTS_SECONDS = _env_int("SECURE_HSTS_SECONDS", 31_536_000 if DJANGO_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", DJANGO_HTTPS)
SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", DJANGO_HTTPS)
SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", DJANGO_HTTPS)
# Probes and the metrics scraper ask over plain HTTP inside the network: not redirected.
SECURE_REDIRECT_EXEMPT = [r"^health(/|$)", r"^metrics$"]
SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", DJANGO_HTTPS)
CSRF_COOKIE_SECURE = _env_bool("CSRF_COOKIE_SECURE", DJANGO_HTTPS)
_proxy_header = ENV.get("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO,https" if DJANGO_HTTPS else "")
if _proxy_header.strip():
    _name, _, _value = _proxy_header.partition(",")
    if not _name.strip() or not _value.strip():
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value' (HTTP_X_FORWARDED_PROTO,https)")
    SECURE_PROXY_SSL_HEADER = (_name.strip(), _value.strip())
# The same headers on every answer (SecurityMiddleware, outermost but for the request id):
# nosniff, Referrer-Policy, Cross-Origin-Opener-Policy, X-Frame-Options: DENY.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# A request with a bad Host: one WARNING line, no traceback (api.security.OneLineWarning).
LOGGING.setdefault("filters", {})["one_line_warning"] = {"()": "api.security.OneLineWarning"}
LOGGING["loggers"]["django.security.DisallowedHost"] = {
    "level": "WARNING",
    "filters": ["one_line_warning"],
    "propagate": True,
}
