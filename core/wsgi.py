"""WSGI entry point (gunicorn core.wsgi:application).

Django's per-request connection upkeep is swapped for :mod:`core.request_upkeep` (the same work
on the connections this thread opened, without walking every alias twice a request).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

application = get_wsgi_application()

from core import request_upkeep  # after Django is set up (it imports django.db)

request_upkeep.install()
