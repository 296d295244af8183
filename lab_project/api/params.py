"""
Query parameters and refusals shared by the lessons' endpoints.

Each parser returns the value, or the response saying why not, which the view returns as
is::

    limit = row_limit(request, 10)
    if isinstance(limit, JsonResponse):
        return limit

One parser per kind of parameter, so the same mistake gets the same status and the same
message from every lesson.
"""

import re

from django.db import connection
from django.http import HttpRequest, JsonResponse

MAX_LIMIT = 1_000  # rows an endpoint with a ``limit`` returns at the most
MAX_QUERIES = 10
MAX_QUERY_MS = 2_000
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)


def bad_request(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


def whole(request: HttpRequest, name: str, default: int | None, low: int, high: int, *,
          missing: str | None = None) -> int | JsonResponse:
    """The query parameter ``name`` as a whole number from ``low`` to ``high`` in ASCII
    digits, ``default`` when it is absent, or the 400 response saying why not.

    ``default`` None makes the parameter required; ``missing`` then replaces the message
    given when it is absent.
    """
    raw = request.GET.get(name)
    if raw is None and default is not None:
        return default
    if raw is not None and raw.isascii() and raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    if raw is None and missing is not None:
        return bad_request(missing)
    got = "it is missing" if raw is None else f"got {raw!r}"
    return bad_request(f"{name} must be a whole number from {low} to {high}, {got}.")


def row_limit(request: HttpRequest, default: int) -> int | JsonResponse:
    """The ``limit`` query parameter (1 to 1,000 rows, ``default`` when it is absent), or
    the 400 response saying why not."""
    return whole(request, "limit", default, 1, MAX_LIMIT)


def choice(request: HttpRequest, name: str, choices: tuple[str, ...]) -> str | JsonResponse:
    """The query parameter ``name`` (default: the first choice), or the 400 response."""
    raw = request.GET.get(name, choices[0])
    if raw in choices:
        return raw
    return bad_request(f"{name} must be one of {', '.join(choices)}, got {raw!r}.")


def key(request: HttpRequest, default: str) -> str | JsonResponse:
    """The ``key`` query parameter, a name safe inside a cache key, or the 400 response."""
    raw = request.GET.get("key", default)
    if _KEY.fullmatch(raw):
        return raw
    return bad_request(f"key must be 1 to 64 letters, digits, '.', '_' or '-', got {raw!r}.")


def needs_postgresql() -> JsonResponse | None:
    """None on PostgreSQL, else the 501 response of an endpoint that runs ``pg_sleep()``."""
    if connection.vendor == "postgresql":
        return None
    return JsonResponse(
        {"error": "This endpoint runs pg_sleep() and needs PostgreSQL, but LAB_DATABASE_URL "
                  f"points to {connection.vendor}."},
        status=501,
    )


def sleeping_queries(request: HttpRequest, default_ms: int, modes: tuple[str, ...]
                     ) -> tuple[int, int, str] | JsonResponse:
    """``n`` queries (1 to 10, default 3) that each sleep ``ms`` in PostgreSQL (0 to
    2,000, default ``default_ms``), run the ``mode`` way (default: the first of ``modes``),
    or the 400 or 501 response saying why they cannot run."""
    n = whole(request, "n", 3, 1, MAX_QUERIES)
    if isinstance(n, JsonResponse):
        return n
    ms = whole(request, "ms", default_ms, 0, MAX_QUERY_MS)
    if isinstance(ms, JsonResponse):
        return ms
    mode = choice(request, "mode", modes)
    if isinstance(mode, JsonResponse):
        return mode
    refusal = needs_postgresql()
    return refusal if refusal is not None else (n, ms, mode)


def sleep_ms(request: HttpRequest, high: int) -> int | JsonResponse:
    """The ``ms`` of a ``pg_sleep`` endpoint (default 100), or the 400 or 501 response
    saying why it cannot run."""
    ms = whole(request, "ms", 100, 0, high)
    if isinstance(ms, JsonResponse):
        return ms
    refusal = needs_postgresql()
    return refusal if refusal is not None else ms
