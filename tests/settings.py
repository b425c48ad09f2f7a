"""Settings for the test suite: the project's settings with a throwaway SECRET_KEY.

The key is random per run (never written in the code); everything else, databases included,
comes from the environment exactly as in production.
"""

import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

from core import settings as _base

globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

# Django's test client sends Host: testserver; production defaults leave it out (issue 10).
if "testserver" not in ALLOWED_HOSTS:  # noqa: F821 (set by the update above)
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F821
