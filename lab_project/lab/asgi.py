"""
ASGI entry point (uvicorn, gunicorn -k asgi, uvicorn_worker, granian, daphne, hypercorn).

It exposes the ASGI callable as a module-level variable named ``application``.

With ``LAB_INSTRUMENT=1`` the counters are installed before Django builds its handler,
and ``application`` is Django wrapped by the counters endpoint (``lab/instrument.py``);
otherwise it is Django's handler itself, untouched.

Every view module is imported here, at worker boot, rather than on each worker's first
request (Django resolves the URLconf lazily): with several workers on one core those
first-request imports would otherwise land inside a measurement and stall it for seconds.
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lab.settings")

if settings.LAB_INSTRUMENT:
    from lab import instrument

    instrument.install()
    application = instrument.asgi(get_asgi_application())
else:
    application = get_asgi_application()

get_resolver().url_patterns  # noqa: B018 (imports every view now; see above)
