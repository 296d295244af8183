"""
Lesson 8, database connections: what a request pays to get one, and how a database
failure reaches the client.

* ``GET /l08/one-query`` and ``/l08/one-query-async``: one cheap query
  (``Item.objects.filter(pk=1).exists()``), ``{"ok": true}``. Timed under
  ``LAB_CONN_MAX_AGE=0`` (a new connection per request), ``60`` (persistent),
  ``LAB_DB_POOL=1`` (Django's psycopg pool) and ``LAB_DJ_DB_CONN_POOL=1`` (the guide's
  django-db-connection-pool), under WSGI and ASGI; the notebook counts the connections
  the server's processes hold from outside. Django keeps a connection per thread and,
  under an ASGI server, per request (``ASGIHandler`` runs each request in its own
  ``ThreadSensitiveContext``), so there ``CONN_MAX_AGE > 0`` reuses nothing and leaves
  each request's connection open until the garbage collector frees Django's connection
  object; a pool holds the count at its size.
* ``GET /l08/backend``: one cheap query, ``SELECT pg_backend_pid()``, answered as
  ``{"pid": n}``: the PostgreSQL server process behind the connection this request used.
  PostgreSQL runs one process per connection, so the distinct pids over a run of requests
  count the connections the server opened for them (the notebook sends requests one at a
  time: with ``CONN_MAX_AGE=0`` every request gets a new pid, a reused connection keeps
  its pid). 501 on SQLite.
* ``GET /l08/slow?ms=M``: one statement that sleeps ``M`` ms in PostgreSQL. With
  ``LAB_STATEMENT_TIMEOUT_MS`` below ``M`` PostgreSQL cancels it; ``api/db_errors.py``
  turns that into a 504 sentence, and a pool timeout, a connection PostgreSQL closed
  (a restart) or an unreachable database into a 503 sentence.
* ``GET /l08/pool-wait?ms=M``: get a connection, then hold it ``M`` ms (``pg_sleep``);
  answers ``{"waited_ms": ..., "ms": M}`` where ``waited_ms`` is the time spent getting
  the connection: with the pool a checkout, including any wait for a free connection;
  without it a new connection (``CONN_MAX_AGE=0``) or ~0 (a persistent one). A ``def``
  view: every request runs in its own thread under both gunicorn-gthread and an ASGI
  server, so N concurrent requests hold N connections at once, and with a pool of 4 the
  5th waits up to ``M`` ms for the first to come back (less by however much later it
  arrived).
* ``GET /l08/pool-stats``: this process's pool, without a query: with ``LAB_DB_POOL``
  ``psycopg_pool``'s counters (``get_stats()``: connections, waiting requests, total
  wait...); with ``LAB_DJ_DB_CONN_POOL`` the SQLAlchemy ``QueuePool``'s (its size, the
  connections checked in and out, the overflow); 404 with neither.
* ``GET /l08/connection``: what the configured backend hands Django: the ENGINE, the
  class of ``connection.connection`` after one query (``psycopg.Connection``, or the
  pool's wrapper around it) and its psycopg class. Any exception on the way is answered
  as ``{"raised": type, "message": text}`` with status 500, so a backend that cannot run
  says why (the lab's servers log no tracebacks with DEBUG off).

``backend``, ``slow`` and ``pool-wait`` need PostgreSQL (501 on SQLite).
"""

from __future__ import annotations

import time

from catalog.models import Item
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET

from api.db_errors import database_errors
from api.params import sleep_ms

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


@require_GET
@database_errors
def backend(request: HttpRequest) -> JsonResponse:
    if connection.vendor != "postgresql":
        return JsonResponse({"error": "pg_backend_pid() needs PostgreSQL, but LAB_DATABASE_URL "
                                      f"points to {connection.vendor}."}, status=501)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return JsonResponse({"pid": pid})


def _sleep(ms: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [ms / 1000])


@require_GET
@database_errors
def slow(request: HttpRequest) -> JsonResponse:
    ms = sleep_ms(request, MAX_SLEEP_MS)
    if isinstance(ms, JsonResponse):
        return ms
    _sleep(ms)
    return JsonResponse({"ms": ms})


@require_GET
@database_errors
def pool_wait(request: HttpRequest) -> JsonResponse:
    ms = sleep_ms(request, MAX_SLEEP_MS)
    if isinstance(ms, JsonResponse):
        return ms
    start = time.perf_counter()
    connection.ensure_connection()  # a pool checkout, a new connection, or nothing
    waited_ms = round((time.perf_counter() - start) * 1000, 1)
    _sleep(ms)
    return JsonResponse({"waited_ms": waited_ms, "ms": ms})


_GUIDE_POOL_ENGINE = "dj_db_conn_pool.backends.postgresql"


@require_GET
def pool_stats(request: HttpRequest) -> JsonResponse:
    if connection.settings_dict["ENGINE"] == _GUIDE_POOL_ENGINE:
        from dj_db_conn_pool.core import pool_container

        if not pool_container.has(connection.alias):
            return JsonResponse({"error": "The pool opens at the first query: none yet."},
                                status=404)
        queue = pool_container.get(connection.alias)
        return JsonResponse({"pool": "sqlalchemy QueuePool", "size": queue.size(),
                             "checked_in": queue.checkedin(), "checked_out": queue.checkedout(),
                             "overflow": queue.overflow(), "timeout": queue.timeout()})
    pool = connection.pool if connection.vendor == "postgresql" else None
    if pool is None:
        return JsonResponse(
            {"error": "There is no connection pool: LAB_DB_POOL and LAB_DJ_DB_CONN_POOL are off."},
            status=404,
        )
    return JsonResponse({"min_size": pool.min_size, "max_size": pool.max_size,
                         "timeout": pool.timeout, **pool.get_stats()})


def _class_name(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


@require_GET
def connection_info(request: HttpRequest) -> JsonResponse:
    try:
        Item.objects.filter(pk=1).exists()
        raw = connection.connection
        driver = getattr(raw, "driver_connection", raw)
        return JsonResponse({"engine": connection.settings_dict["ENGINE"],
                             "connection": _class_name(raw), "driver": _class_name(driver)})
    except Exception as exc:  # noqa: BLE001 - the point is to say what the backend raised
        return JsonResponse({"raised": _class_name(exc), "message": str(exc)}, status=500)


urlpatterns = [
    path("one-query", one_query),
    path("one-query-async", one_query_async),
    path("backend", backend),
    path("slow", slow),
    path("pool-wait", pool_wait),
    path("pool-stats", pool_stats),
    path("connection", connection_info),
]
