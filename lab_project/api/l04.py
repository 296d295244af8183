"""
Lesson 4, async ORM: what ``asyncio.gather`` of ORM calls really does.

Django 6.1 has no async database backend. Every async ORM method (``aget``, ``acount``,
``aaggregate``...) is the sync method wrapped in ``sync_to_async``, which by default is
*thread-sensitive*: inside one request every such call runs on the request's one worker
thread, one after the other, on that thread's one connection. So the guide's "parallel
database queries" dashboard runs its three queries in sequence. These endpoints make it
countable:

* ``/l04/queries?n=3&ms=100&mode=gather|sequential|threads`` runs ``n`` queries that
  each sleep ``ms`` in PostgreSQL and reports the wall time, the number of distinct
  threads and of distinct PostgreSQL backends (connections) that ran them. ``gather``
  and ``sequential`` take n x ms on 1 thread and 1 connection; ``threads`` uses
  ``sync_to_async(thread_sensitive=False)``, which does run them in parallel, each on
  its own thread of the event loop's default executor and so on its own connection.
  That parallelism has a price Django does not pay for you: a connection opened in one
  of those executor threads belongs to that thread, and Django's end-of-request cleanup
  (``request_finished`` -> ``close_old_connections``) only closes the connections of
  the thread it runs in. They are never closed: under an ASGI server they stay open,
  idle, for the life of the worker, one per executor thread that ever ran a query (the
  default executor has ``min(32, cpus + 4)`` threads), ignoring ``CONN_MAX_AGE``; under
  a WSGI server the per-request loop's executor threads end with the request and their
  connections are dropped unclosed when garbage-collected. A real leak, left visible on
  purpose: notebook 04 counts the TCP connections the
  server's process holds to PostgreSQL. With ``n`` above the executor's
  size, or a tiny ``ms``, threads are reused and fewer than ``n`` connections appear.
* ``/l04/overlap?ms=100`` gathers one ORM-style query and an ``asyncio.sleep`` of the
  same length: those do overlap (about ms, not 2 x ms), because only the query needs
  the thread.
* ``/l04/dashboard-gather`` is the guide's dashboard shape (three tasks, one gather:
  three queries, one after the other); ``/l04/dashboard-one-query`` and its sync twin
  compute the same numbers with one SQL statement (conditional aggregation).
* ``/l04/orders?limit=50&mode=one|peers|raise|select_related`` shows the N+1 problem and
  Django 6.1's fetch modes: reading ``order.customer`` costs one query per order
  (``FETCH_ONE``, the default), one query for all the orders fetched together
  (``FETCH_PEERS``), an error (``FETCH_RAISE``: 409 here, with Django's message), or
  nothing at all after a JOIN (``select_related``).

The ``pg_sleep`` endpoints need PostgreSQL (501 on SQLite); the others run on both.
Their ``elapsed_ms`` varies by design: reporting wall time is their purpose.
"""

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from catalog.models import Customer, Order
from django.core.exceptions import FieldFetchBlocked
from django.db import connection, models
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, JsonResponse
from django.urls import path

from api.params import choice, row_limit, sleep_ms, sleeping_queries

MAX_SLEEP_MS = 2_000
QUERY_MODES = ("gather", "sequential", "threads")
FETCH_MODES = ("one", "peers", "raise", "select_related")


# Sleeping queries #######################################################################


def _sleeping_query(ms: int) -> tuple[int, int]:
    """Run one query that sleeps ``ms`` in PostgreSQL, through Django's connection.

    This is what every async ORM method does underneath: plain sync database code,
    called through ``sync_to_async``. It returns the thread that ran it and the
    PostgreSQL backend (one per connection) that answered.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), pg_sleep(%s)", [ms / 1000])
        backend_pid = cursor.fetchone()[0]
    return threading.get_ident(), backend_pid


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


async def queries(request: HttpRequest) -> JsonResponse:
    asked = sleeping_queries(request, 100, QUERY_MODES)
    if isinstance(asked, JsonResponse):
        return asked
    n, ms, mode = asked

    start = time.perf_counter()
    if mode == "gather":
        # What the guide expects to run in parallel: thread-sensitive, so it cannot.
        run = sync_to_async(_sleeping_query)
        results = await asyncio.gather(*(run(ms) for _ in range(n)))
    elif mode == "sequential":
        run = sync_to_async(_sleeping_query)
        results = [await run(ms) for _ in range(n)]
    else:
        # Really parallel, on the default executor's threads (see the module docstring
        # for the connections this leaves open).
        run = sync_to_async(_sleeping_query, thread_sensitive=False)
        results = await asyncio.gather(*(run(ms) for _ in range(n)))
    elapsed = _elapsed_ms(start)

    return JsonResponse({
        "mode": mode,
        "n": n,
        "ms": ms,
        "elapsed_ms": elapsed,
        "threads": len({thread for thread, _ in results}),
        "connections": len({backend for _, backend in results}),
    })


async def overlap(request: HttpRequest) -> JsonResponse:
    ms = sleep_ms(request, MAX_SLEEP_MS)
    if isinstance(ms, JsonResponse):
        return ms
    start = time.perf_counter()
    # The query waits in the request's thread, the sleep on the event loop: both at once.
    await asyncio.gather(sync_to_async(_sleeping_query)(ms), asyncio.sleep(ms / 1000))
    return JsonResponse({"ms": ms, "elapsed_ms": _elapsed_ms(start)})


# The dashboard ##########################################################################


def _dashboard(customers: int, pending: int, revenue: Any) -> JsonResponse:
    """One rendering for every variant, so their bodies are byte-identical.

    ``Sum`` gives a ``Decimal`` (``None`` on an empty table); a fixed two-decimal string
    keeps the bytes the same whatever the database returns (``Decimal("10")`` vs
    ``Decimal("10.00")``).
    """
    total = f"{revenue if revenue is not None else 0:.2f}"
    return JsonResponse({"customers": customers, "pending": pending, "revenue": total})


async def dashboard_gather(request: HttpRequest) -> JsonResponse:
    # The guide's shape. "Active customers" are customers with at least one order.
    customers_task = asyncio.create_task(
        Customer.objects.filter(orders__isnull=False).distinct().acount()
    )
    pending_task = asyncio.create_task(Order.objects.filter(status="pending").acount())
    revenue_task = asyncio.create_task(Order.objects.aaggregate(total=Sum("amount")))
    customers, pending, revenue = await asyncio.gather(
        customers_task, pending_task, revenue_task
    )
    return _dashboard(customers, pending, revenue["total"])


# One statement: SELECT COUNT(DISTINCT customer_id), COUNT(id) FILTER (WHERE status =
# 'pending'), SUM(amount) FROM catalog_order (SQLite gets a CASE WHEN instead of FILTER).
_ONE_QUERY = {
    "customers": Count("customer", distinct=True),
    "pending": Count("pk", filter=Q(status="pending")),
    "revenue": Sum("amount"),
}


async def dashboard_one_query(request: HttpRequest) -> JsonResponse:
    stats = await Order.objects.aaggregate(**_ONE_QUERY)
    return _dashboard(stats["customers"], stats["pending"], stats["revenue"])


def dashboard_one_query_sync(request: HttpRequest) -> JsonResponse:
    stats = Order.objects.aggregate(**_ONE_QUERY)
    return _dashboard(stats["customers"], stats["pending"], stats["revenue"])


# N+1 and fetch modes ####################################################################

_FETCH: dict[str, Callable[[models.QuerySet[Order]], models.QuerySet[Order]]] = {
    "one": lambda orders: orders,  # FETCH_ONE is the default: one query per order
    "peers": lambda orders: orders.fetch_mode(models.FETCH_PEERS),
    "raise": lambda orders: orders.fetch_mode(models.FETCH_RAISE),
    "select_related": lambda orders: orders.select_related("customer"),
}


def orders(request: HttpRequest) -> JsonResponse:
    limit = row_limit(request, 50)
    if isinstance(limit, JsonResponse):
        return limit
    mode = choice(request, "mode", FETCH_MODES)
    if isinstance(mode, JsonResponse):
        return mode
    rows = list(_FETCH[mode](Order.objects.order_by("id"))[:limit])
    try:
        body = [
            {"id": order.id, "customer": order.customer.name, "amount": f"{order.amount:.2f}"}
            for order in rows
        ]
    except FieldFetchBlocked as exc:
        # A 409 rather than a 500, so the notebook can show Django's own message.
        return JsonResponse({"error": str(exc)}, status=409)
    return JsonResponse(body, safe=False)


urlpatterns = [
    path("queries", queries),
    path("overlap", overlap),
    path("dashboard-gather", dashboard_gather),
    path("dashboard-one-query", dashboard_one_query),
    path("dashboard-one-query-sync", dashboard_one_query_sync),
    path("orders", orders),
]
