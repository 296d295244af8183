"""
Lesson 8, database connections: what a request pays to get one, and how a database
failure reaches the client.

* ``GET /l08/one-query`` and ``/l08/one-query-async``: one cheap query
  (``Item.objects.filter(pk=1).exists()``), ``{"ok": true}``. Timed under
  ``LAB_CONN_MAX_AGE=0`` (a new connection per request), ``60`` (persistent) and
  ``LAB_DB_POOL=1`` (Django's psycopg pool), under WSGI and ASGI; the notebook counts the
  server's connections in ``pg_stat_activity`` from outside. Under an ASGI server a
  persistent connection belongs to the thread that ran the request's sync code, a new
  thread per request, so ``CONN_MAX_AGE > 0`` leaves one idle connection behind per
  request that nothing reuses (until PostgreSQL or the process ends them); the pool
  holds the count at its size.
* ``GET /l08/slow?ms=M``: one statement that sleeps ``M`` ms in PostgreSQL. With
  ``LAB_STATEMENT_TIMEOUT_MS`` below ``M`` PostgreSQL cancels it; ``api/db_errors.py``
  turns that into a 504 sentence, a pool timeout or an unreachable database into 503.
* ``GET /l08/pool-wait?ms=M``: get a connection, then hold it ``M`` ms (``pg_sleep``);
  answers ``{"waited_ms": ..., "ms": M}`` where ``waited_ms`` is the time spent getting
  the connection: with the pool a checkout, including any wait for a free connection;
  without it a new connection (``CONN_MAX_AGE=0``) or ~0 (a persistent one). A ``def``
  view: every request runs in its own thread under both gunicorn-gthread and an ASGI
  server, so N concurrent requests hold N connections at once, and with a pool of 4 the
  5th waits about ``M`` ms for the first to come back.
* ``GET /l08/pool-stats``: ``psycopg_pool``'s counters for this process's pool
  (``get_stats()``: connections, waiting requests, total wait...), without a query;
  404 when ``LAB_DB_POOL`` is off.

``slow`` and ``pool-wait`` need PostgreSQL (501 on SQLite).
"""

from __future__ import annotations

import time

from catalog.models import Item
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET

from api.db_errors import database_errors
from api.l04 import _sleep_ms

MAX_SLEEP_MS = 60_000
_OK = {"ok": True}


@require_GET
@database_errors
def one_query(request: HttpRequest) -> JsonResponse:
    Item.objects.filter(pk=1).exists()
    return JsonResponse(_OK)


@require_GET
@database_errors
async def one_query_async(request: HttpRequest) -> JsonResponse:
    await Item.objects.filter(pk=1).aexists()
    return JsonResponse(_OK)


def _sleep(ms: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [ms / 1000])


@require_GET
@database_errors
def slow(request: HttpRequest) -> JsonResponse:
    ms = _sleep_ms(request, MAX_SLEEP_MS)
    if isinstance(ms, JsonResponse):
        return ms
    _sleep(ms)
    return JsonResponse({"ms": ms})


@require_GET
@database_errors
def pool_wait(request: HttpRequest) -> JsonResponse:
    ms = _sleep_ms(request, MAX_SLEEP_MS)
    if isinstance(ms, JsonResponse):
        return ms
    start = time.perf_counter()
    connection.ensure_connection()  # a pool checkout, a new connection, or nothing
    waited_ms = round((time.perf_counter() - start) * 1000, 1)
    _sleep(ms)
    return JsonResponse({"waited_ms": waited_ms, "ms": ms})


@require_GET
def pool_stats(request: HttpRequest) -> JsonResponse:
    pool = connection.pool if connection.vendor == "postgresql" else None
    if pool is None:
        return JsonResponse(
            {"error": "There is no connection pool: LAB_DB_POOL is off."}, status=404
        )
    return JsonResponse({"min_size": pool.min_size, "max_size": pool.max_size,
                         "timeout": pool.timeout, **pool.get_stats()})


urlpatterns = [
    path("one-query", one_query),
    path("one-query-async", one_query_async),
    path("slow", slow),
    path("pool-wait", pool_wait),
    path("pool-stats", pool_stats),
]
