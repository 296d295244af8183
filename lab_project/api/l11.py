"""
Lesson 11, the guide's optimization checklist applied to one endpoint, one item at a
time: "the lab's main API endpoint", the 20 first active items (by id) with their price,
as ``[{"id","name","price"}, ...]``. Every variant answers the same bytes (compact JSON,
UTF-8, price a string with two decimals, as lesson 6 renders it), so a notebook can
race them and see what each checklist item buys on its own:

* ``/l11/drf/items``: DRF, ``@api_view`` + a ``ModelSerializer`` + ``Response``, sync.
  The naive starting point: what a typical project has.
* ``/l11/ninja/items``: Django Ninja, a sync operation ("Use Django Ninja over DRF").
* ``/l11/ninja-async/items``: the same operation as ``async def`` over the async ORM
  ("Enable async views"). Django's async ORM is ``sync_to_async`` underneath: under an
  ASGI server the query still runs in a thread; under WSGI the view gets an event loop
  of its own per request.
* ``/l11/ninja-cached/items``: the sync Ninja operation with the guide's manual caching
  ("Enable Redis caching"): ``cache.get``, on a miss the ``.values()`` rows computed
  and ``cache.set`` for 300 s under ``l11:items``. A hit skips the query, not Ninja's
  validation and rendering of the rows.
* ``/l11/raw-cached/items``: the tuned endpoint: a plain ``def`` view that caches the
  finished body (``.values()`` rows encoded by orjson) under ``l11:items.json``, so a
  hit is one cache GET and no serialization at all.
* ``/l11/raw-cached-async/items``: the same body and key with ``cache.aget``/``aset``
  (each a thread hop: no Django cache backend is natively async).

The cache is ``LAB_CACHE`` (with the default ``none``, Django's DummyCache, every call is
a miss and the cached variants compute every time). The query is bounded: ``active``,
``ORDER BY id``, ``LIMIT 20``. Entries expire after 300 s; the lab's data never changes
while it runs, so they are never stale here (lesson 7 covers invalidation).
"""

from __future__ import annotations

import time

from decimal import Decimal
from typing import Any

import orjson
from catalog.models import Item
from django.core.cache import cache
from django.db.models import QuerySet
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from ninja import NinjaAPI, Schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from api.l06 import CompactJSONRenderer  # compact, UTF-8: the bytes DRF and orjson give

COUNT = 20
FIELDS = ("id", "name", "price")
CACHE_TIMEOUT = 300  # seconds, the guide's timeout
NINJA_KEY = "l11:items"  # the rows (list of dicts): Ninja still validates and renders them
RAW_KEY = "l11:items.json"  # the finished body (bytes)


def _active_items() -> QuerySet[Item]:
    return Item.objects.filter(active=True).order_by("id")[:COUNT]


def _rows() -> list[dict[str, Any]]:
    return list(_active_items().values(*FIELDS))


def _body(rows: list[dict[str, Any]]) -> bytes:
    # orjson has no Decimal type: default=str gives "12.30", as DRF and Ninja do.
    return orjson.dumps(rows, default=str)


# DRF: the starting point ################################################################


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = FIELDS


@api_view(["GET"])
def drf_items(request: Any) -> Response:
    return Response(ItemSerializer(_active_items(), many=True).data)


# Django Ninja: sync, async, cached ######################################################


class ItemSchema(Schema):
    id: int
    name: str
    price: Decimal  # not float: 12.3 would render as 12.3, not "12.30"


api = NinjaAPI(
    renderer=CompactJSONRenderer(), urls_namespace="l11-ninja", docs_url=None, openapi_url=None
)


@api.get("/ninja/items", response=list[ItemSchema])
def ninja_items(request: HttpRequest) -> Any:
    return _active_items()  # a queryset: Ninja evaluates it while validating


@api.get("/ninja-async/items", response=list[ItemSchema])
async def ninja_async_items(request: HttpRequest) -> Any:
    # Evaluated here, with the async ORM: a queryset returned unevaluated would run its
    # query during Ninja's validation, on the event loop (SynchronousOnlyOperation).
    return [item async for item in _active_items()]


@api.get("/ninja-cached/items", response=list[ItemSchema])
def ninja_cached_items(request: HttpRequest) -> Any:
    rows = cache.get(NINJA_KEY)
    if rows is None:
        rows = _rows()
        cache.set(NINJA_KEY, rows, timeout=CACHE_TIMEOUT)
    return rows


# Raw Django, cached: the tuned endpoint #################################################


def raw_cached_items(request: HttpRequest) -> HttpResponse:
    body = cache.get(RAW_KEY)
    if body is None:
        body = _body(_rows())
        cache.set(RAW_KEY, body, timeout=CACHE_TIMEOUT)
    return HttpResponse(body, content_type="application/json")


async def raw_cached_async_items(request: HttpRequest) -> HttpResponse:
    body = await cache.aget(RAW_KEY)
    if body is None:
        body = _body([row async for row in _active_items().values(*FIELDS)])
        await cache.aset(RAW_KEY, body, timeout=CACHE_TIMEOUT)
    return HttpResponse(body, content_type="application/json")


# The latency budget: the same body, uncached, timed stage by stage ######################


def budget_items(request: HttpRequest) -> HttpResponse:
    """The raw endpoint without its cache, reporting where the time went in
    ``Server-Timing``: ``db`` (waiting on PostgreSQL), ``orm`` (Django building the
    query and the rows, minus db), ``serialize`` (rows to bytes) and ``view`` (all of it).
    Put ``ServerTimingMiddleware`` first in ``MIDDLEWARE`` to add ``app`` (the view
    plus every middleware); the client adds what no server timer sees."""
    db_ms = 0.0

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal db_ms
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            db_ms += (time.perf_counter() - start) * 1000

    t0 = time.perf_counter()
    with connection.execute_wrapper(timed):
        rows = _rows()
    t1 = time.perf_counter()
    body = _body(rows)
    t2 = time.perf_counter()
    response = HttpResponse(body, content_type="application/json")
    response["Server-Timing"] = (
        f"db;dur={db_ms:.3f}, orm;dur={(t1 - t0) * 1000 - db_ms:.3f}, "
        f"serialize;dur={(t2 - t1) * 1000:.3f}, view;dur={(t2 - t0) * 1000:.3f}"
    )
    return response


urlpatterns = [
    path("budget/items", budget_items),
    path("drf/items", drf_items),
    path("raw-cached/items", raw_cached_items),
    path("raw-cached-async/items", raw_cached_async_items),
    path("", api.urls),  # ninja/items, ninja-async/items, ninja-cached/items
]
