"""
Lesson 11, the guide's optimization checklist applied to one endpoint, one change at a
time: "the lab's main API endpoint", the 20 first active items (by id) with their price,
as ``[{"id","name","price"}, ...]``. Every variant answers the same body bytes (compact
JSON, UTF-8, price a string with two decimals, as lesson 6 renders it), so a notebook can
race them and see what each change buys on its own:

* ``/l11/drf/items``: DRF, ``@api_view`` + a ``ModelSerializer`` + ``Response``, sync.
  The starting point: what a typical project has.
* ``/l11/serializer/items``: the same ``ModelSerializer`` and DRF's ``JSONRenderer`` in a
  plain Django ``def`` view: DRF's ``APIView`` (request wrapping, content negotiation,
  the empty authentication, permission and throttle checks) left out. DRF 3.18 has no
  async views (``APIView.dispatch`` calls the handler without awaiting it), so this is
  the step a DRF project takes before its view can become ``async def``.
* ``/l11/serializer-async/items``: the same view as ``async def``, the rows fetched with
  ``async for`` ("Enable async views"). Django's async ORM is ``sync_to_async``
  underneath: under an ASGI server the query still runs in a thread.
* ``/l11/ninja/items``: Django Ninja, a sync operation.
* ``/l11/ninja-async/items``: the Ninja operation as ``async def``, the rows fetched the
  same way ("Use Django Ninja over DRF", after the async step).
* ``/l11/ninja-cached-async/items``: that async operation with the guide's manual
  caching ("Enable Redis caching"): ``await cache.aget``, on a miss the ``.values()``
  rows and ``await cache.aset`` for 300 s under ``l11:items`` (each call a thread hop: no
  Django cache backend is natively async). A hit skips the query, not Ninja's validation
  and rendering of the rows.
* ``/l11/ninja-cached/items``: the same as a sync operation (``cache.get``/``set``).
* ``/l11/raw-cached/items``: the tuned endpoint: a plain ``def`` view that caches the
  finished body (``.values()`` rows encoded by orjson) under ``l11:items.json``, so a
  hit is one cache GET and no serialization at all.
* ``/l11/raw-cached-async/items``: the same body and key with ``cache.aget``/``aset``.
* ``/l11/budget/items``: the raw endpoint without its cache, behind a token check, timed
  stage by stage (see ``budget_items`` and ``StageClock``); ``/l11/budget/token`` issues
  the token.

The cache is ``LAB_CACHE`` (with the default ``none``, Django's DummyCache, every call is
a miss and the cached variants compute every time). The query is bounded: ``active``,
``ORDER BY id``, ``LIMIT 20``. Entries expire after 300 s; the lab's data never changes
while it runs, so they are never stale here (lesson 7 covers invalidation).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from catalog.models import Customer, Item
from django.core import signing
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from ninja import NinjaAPI, Schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer
from rest_framework.response import Response

from api.render import CompactJSONRenderer, orjson_bytes  # compact, UTF-8: the bytes DRF gives

COUNT = 20
FIELDS = ("id", "name", "price")
CACHE_TIMEOUT = 300  # seconds, the guide's timeout
NINJA_KEY = "l11:items"  # the rows (list of dicts): Ninja still validates and renders them
RAW_KEY = "l11:items.json"  # the finished body (bytes)


def _active_items() -> QuerySet[Item]:
    return Item.objects.filter(active=True).order_by("id")[:COUNT]


def _rows() -> list[dict[str, Any]]:
    return list(_active_items().values(*FIELDS))


async def _arows() -> list[dict[str, Any]]:
    return [row async for row in _active_items().values(*FIELDS)]


# DRF: the starting point, then its serializer without APIView, sync and async ###########


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = FIELDS


@api_view(["GET"])
def drf_items(request: Any) -> Response:
    return Response(ItemSerializer(_active_items(), many=True).data)


_DRF_JSON = DRFJSONRenderer()  # what DRF's Response renders with here (settings.REST_FRAMEWORK)


def serializer_items(request: HttpRequest) -> HttpResponse:
    items = list(_active_items())
    return HttpResponse(_DRF_JSON.render(ItemSerializer(items, many=True).data),
                        content_type="application/json")


async def serializer_async_items(request: HttpRequest) -> HttpResponse:
    items = [item async for item in _active_items()]
    return HttpResponse(_DRF_JSON.render(ItemSerializer(items, many=True).data),
                        content_type="application/json")


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


@api.get("/ninja-cached-async/items", response=list[ItemSchema])
async def ninja_cached_async_items(request: HttpRequest) -> Any:
    rows = await cache.aget(NINJA_KEY)
    if rows is None:
        rows = await _arows()
        await cache.aset(NINJA_KEY, rows, timeout=CACHE_TIMEOUT)
    return rows


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
        body = orjson_bytes(_rows())
        cache.set(RAW_KEY, body, timeout=CACHE_TIMEOUT)
    return HttpResponse(body, content_type="application/json")


async def raw_cached_async_items(request: HttpRequest) -> HttpResponse:
    body = await cache.aget(RAW_KEY)
    if body is None:
        body = orjson_bytes(await _arows())
        await cache.aset(RAW_KEY, body, timeout=CACHE_TIMEOUT)
    return HttpResponse(body, content_type="application/json")


# The latency budget: the same body, uncached, behind a token, timed stage by stage ######
#
# Every stage is an interval between two clock readings, and the intervals follow each
# other, so together they are the whole request as the client saw it (nothing is
# computed as "the rest"):
#
#   client lag    the client's intended send time -> the request sent (the client late)
#   request in    sent -> StageClock entered (the client connecting, the server accepting
#                 and parsing, Django's request set-up)
#   middleware    StageClock -> StageClockInner, and back (every middleware between)
#   routing       StageClockInner -> the view's first line, and back (URL resolution,
#                 process_view hooks, the view call)
#   auth          the token's signature checked, its customer looked up (one query)
#   ORM query     the items' query built, run and turned into rows
#   serialization the rows encoded to bytes (orjson)
#   response      the HttpResponse built; StageClock left -> the client has the last byte
#                 (the server writing, the network, the client reading)
#
# time.perf_counter() is CLOCK_MONOTONIC on Linux: one clock for every process of the
# machine, so the client can place the server's readings (``Lab-Clock``) on its own.

TOKEN_SALT = "l11-api-token"
TOKEN_MAX_AGE = 24 * 3600  # seconds


def issue_token(customer_id: int) -> str:
    """A signed token naming a customer (HMAC-SHA256 keyed from SECRET_KEY, timestamped)."""
    return signing.dumps({"customer": customer_id}, salt=TOKEN_SALT)


def authenticate(request: HttpRequest) -> int | None:
    """The customer an ``Authorization: Bearer <token>`` header proves, or None: the
    signature and age checked, then the customer looked up (one query), as an API's
    token authentication does (DRF's ``TokenAuthentication`` looks its token up too)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not token:
        return None
    try:
        claims = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired included
        return None
    customer = claims.get("customer") if isinstance(claims, dict) else None
    if not isinstance(customer, int):
        return None
    return Customer.objects.filter(pk=customer).values_list("pk", flat=True).first()


def budget_token(request: HttpRequest) -> JsonResponse:
    """``?customer=<id>``: a token for that customer (the lab's stand-in for a login
    endpoint, which would check a password first)."""
    raw = request.GET.get("customer", "")
    if not raw.isdigit() or not Customer.objects.filter(pk=int(raw)).exists():
        return JsonResponse({"error": f"no customer {raw!r}: give ?customer=<an existing id>."},
                            status=404)
    return JsonResponse({"token": issue_token(int(raw))})


class _Queries:
    """Counts the queries run inside ``with connection.execute_wrapper(q):`` and the time
    spent waiting on the database for them."""

    def __init__(self) -> None:
        self.count = 0
        self.ms = 0.0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.ms += (time.perf_counter() - start) * 1000


def budget_items(request: HttpRequest) -> HttpResponse:
    """The raw endpoint without its cache, behind a token: 401 without a valid one.

    ``Server-Timing`` reports the view's stages in ms (``auth``, ``orm``, ``serialize``,
    ``respond``, and ``auth-db``/``orm-db``, the database waits inside the first two);
    ``Lab-Queries`` the queries each stage ran. With ``StageClock`` first and
    ``StageClockInner`` last in ``MIDDLEWARE``, the response also carries
    ``middleware`` and ``routing`` and the ``Lab-Clock`` readings."""
    t0 = time.perf_counter()
    auth_q, orm_q = _Queries(), _Queries()
    with connection.execute_wrapper(auth_q):
        customer = authenticate(request)
    t1 = time.perf_counter()
    if customer is None:
        response = JsonResponse({"error": "authentication required: send Authorization: Bearer "
                                 "<token from /l11/budget/token>."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="lab"'
        return response
    with connection.execute_wrapper(orm_q):
        rows = _rows()
    t2 = time.perf_counter()
    body = orjson_bytes(rows)
    t3 = time.perf_counter()
    response = HttpResponse(body, content_type="application/json")
    t4 = time.perf_counter()
    # Setting these headers happens after the view's last reading: StageClock counts it in
    # "routing" (between the view's exit and StageClockInner's), so no time goes missing.
    response["Server-Timing"] = (
        f"auth;dur={(t1 - t0) * 1000:.3f}, auth-db;dur={auth_q.ms:.3f}, "
        f"orm;dur={(t2 - t1) * 1000:.3f}, orm-db;dur={orm_q.ms:.3f}, "
        f"serialize;dur={(t3 - t2) * 1000:.3f}, respond;dur={(t4 - t3) * 1000:.3f}"
    )
    response["Lab-Queries"] = f"auth={auth_q.count}, orm={orm_q.count}"
    response._l11_view = (t0, t4)  # read by StageClock
    return response


class StageClock:
    """First in ``MIDDLEWARE``: reads the clock when the request enters the stack and
    when the response leaves it; adds ``middleware`` and ``routing`` to Server-Timing
    (with ``StageClockInner`` last in the stack) and ``Lab-Clock: <in> <out>`` (seconds
    of ``time.perf_counter()``). Sync only: the budget is measured under WSGI."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        t_in = time.perf_counter()
        response = self.get_response(request)
        inner = getattr(response, "_l11_inner", None)
        view = getattr(response, "_l11_view", None)
        t_out = time.perf_counter()
        if inner is not None:
            metrics = [f"middleware;dur={((inner[0] - t_in) + (t_out - inner[1])) * 1000:.3f}"]
            if view is not None:
                routing = (view[0] - inner[0]) + (inner[1] - view[1])
                metrics.append(f"routing;dur={routing * 1000:.3f}")
            earlier = response.get("Server-Timing")
            response["Server-Timing"] = ", ".join([earlier, *metrics] if earlier else metrics)
        # t_out, not a later reading: what follows (these headers, the server writing the
        # response) is the client's "response" stage, from this reading to its last byte.
        response["Lab-Clock"] = f"{t_in:.6f} {t_out:.6f}"
        return response


class StageClockInner:
    """Last in ``MIDDLEWARE``: reads the clock when the request leaves the middleware for
    the URL resolver and view, and when the response comes back."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        t_in = time.perf_counter()
        response = self.get_response(request)
        response._l11_inner = (t_in, time.perf_counter())
        return response


urlpatterns = [
    path("budget/items", budget_items),
    path("budget/token", budget_token),
    path("drf/items", drf_items),
    path("serializer/items", serializer_items),
    path("serializer-async/items", serializer_async_items),
    path("raw-cached/items", raw_cached_items),
    path("raw-cached-async/items", raw_cached_async_items),
    path("", api.urls),  # ninja/items, ninja-async/items, ninja-cached(-async)/items
]
