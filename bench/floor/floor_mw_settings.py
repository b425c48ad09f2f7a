"""The floor behind the service's middleware (bench/floor/README.md): the service's own settings
(``core.settings``: its middleware, its database configuration, its logging), with the floor's
bare DRF views as the only URLs (``floor_mw_urls``). Served like the service, by
``gunicorn -c gunicorn.conf.py`` (access log on)."""

from core.settings import *

ROOT_URLCONF = "floor_mw_urls"
