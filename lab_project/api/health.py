"""Readiness probe: the cheapest response the project can give (no database, no cache)."""

from django.http import HttpRequest, HttpResponse

# Encoded once at import: the body JsonResponse({"status": "ok"}) would produce.
_OK = b'{"status": "ok"}'


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_OK, content_type="application/json")
