"""
ASGI entry point (uvicorn, gunicorn -k asgi, uvicorn_worker, granian, daphne, hypercorn).

It exposes the ASGI callable as a module-level variable named ``application``.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lab.settings")

application = get_asgi_application()
