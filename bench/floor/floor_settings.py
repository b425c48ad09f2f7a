"""The floor of a database read in Django on this machine (bench/floor/README.md).

The bare project of ../shared/bench/bare/ plus one PostgreSQL database (the bench's users_db,
``USERS_DATABASE_URL``), held open per thread (CONN_MAX_AGE=None), no middleware, no apps.
"""

import os
from urllib.parse import urlsplit

_url = urlsplit(os.environ["USERS_DATABASE_URL"])
SECRET_KEY = "floor-bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "floor_urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": _url.username or "postgres",
        "PASSWORD": _url.password or "",
        "HOST": _url.hostname or "127.0.0.1",
        "PORT": str(_url.port or 5432),
        "CONN_MAX_AGE": None,
    }
}
USE_TZ = True
USE_I18N = False
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
