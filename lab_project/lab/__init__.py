"""The lab project's configuration package: settings, URLs, WSGI and ASGI entry points."""
