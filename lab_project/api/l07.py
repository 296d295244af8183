"""
Lesson 7, caching with django-redis: the guide's three tools (``cache_page``, manual
``cache.get``/``cache.set``, ``delete_pattern``) around one expensive query, and what
they do not do for you. The configured default cache (``LAB_CACHE``) is used throughout.

* ``GET /l07/expensive``: the order statistics of ``api/order_stats.py``, computed every
  time (a few ms of database work). The baseline.
* ``GET /l07/cached-page``: the same view under ``@cache_page(60 * 5)``, as the guide
  writes it. ``GET /l07/cached-page-async``: the same decorator on an ``async def``.
* ``GET /l07/manual`` (and ``?key=K``): the guide's manual pattern under
  ``items:all`` (``items:K``), with ``X-Cache: hit|miss`` so a client can count hits
  (``cache_page`` has no such header) and ``X-Worker: <pid>``, the process that answered
  (LocMem is per process). ``GET /l07/manual-async``: the same with
  ``cache.aget``/``cache.aset``.
* ``POST /l07/invalidate``: the guide's ``cache.delete_pattern("items:*")``, answering
  ``{"deleted": n}``; ``GET /l07/keys?pattern=items:*`` lists the keys as stored
  (``:1:items:all``: Django's key function prefixes ``<KEY_PREFIX>:<VERSION>:``), read
  with the raw redis-py client's SCAN. Both need django-redis: 501 otherwise.
* ``GET /l07/ticker``: an async view that does nothing, to time next to the others.
* The stampede endpoints (``/l07/stampede``, ``/l07/stampede-locked``,
  ``/l07/stampede-page``) live in ``api/l07_stampede.py``.

The bodies of expensive, cached-page(-async) and manual(-async) are byte-identical.

``cache_page`` on an async view blocks the event loop. In Django 6.1 the decorator
(``make_middleware_decorator`` in django/utils/decorators.py) wraps an ``async def`` view
in an ``async def`` wrapper that calls the middleware's *sync* ``process_request`` (one
cache GET on a miss, two on a hit: the header list, then the page) and
``process_response`` (two SETs on a miss) directly, on the event-loop thread: no
``sync_to_async``. While those calls wait for Redis, no other request of that worker
moves. (``CacheMiddleware`` installed in ``MIDDLEWARE`` instead goes through
``MiddlewareMixin.__acall__``, which does hop to a thread.) On loopback a Redis round
trip is ~0.1 ms, lost in the noise of a 2-core machine; ``LAB_CACHE_DELAY_MS``
(lab/slow_cache.py) adds a remote Redis's round trip to every cache call, and then
``/l07/ticker`` requests sent alongside ``/l07/cached-page-async`` hits wait for them,
while alongside ``/l07/manual-async`` (``aget`` runs in a thread) they do not.
"""

from __future__ import annotations

import os
import re

from asgiref.sync import sync_to_async
from django.core.cache import cache, caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.cache import cache_page
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_redis.cache import RedisCache as DjangoRedisCache

from api import l07_stampede
from api.order_stats import order_stats
from api.params import key

_PATTERN = re.compile(r"[A-Za-z0-9_.:*?\[\]-]{1,100}", re.ASCII)
_TICK = b'{"ok": true}'


def _stats_response(stats: list) -> JsonResponse:
    return JsonResponse(stats, safe=False)


# Computed every time, and cache_page ####################################################


@require_GET
def expensive(request: HttpRequest) -> JsonResponse:
    return _stats_response(order_stats())


@cache_page(60 * 5)  # 5 minutes
def cached_page(request: HttpRequest) -> JsonResponse:
    return _stats_response(order_stats())


@cache_page(60 * 5)  # the cache calls around this view run on the event-loop thread
async def cached_page_async(request: HttpRequest) -> JsonResponse:
    return _stats_response(await sync_to_async(order_stats)())


@require_GET
async def ticker(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_TICK, content_type="application/json")


# Manual caching #########################################################################


def _cache_key(request: HttpRequest) -> str | JsonResponse:
    suffix = key(request, "all")
    return suffix if isinstance(suffix, JsonResponse) else f"items:{suffix}"


def _marked(stats: list, hit: bool) -> JsonResponse:
    response = _stats_response(stats)
    response["X-Cache"] = "hit" if hit else "miss"
    response["X-Worker"] = str(os.getpid())
    return response


@require_GET
def manual(request: HttpRequest) -> JsonResponse:
    cache_key = _cache_key(request)
    if isinstance(cache_key, JsonResponse):
        return cache_key
    stats = cache.get(cache_key)
    hit = stats is not None
    if not hit:
        stats = order_stats()
        cache.set(cache_key, stats, timeout=300)
    return _marked(stats, hit)


@require_GET
async def manual_async(request: HttpRequest) -> JsonResponse:
    cache_key = _cache_key(request)
    if isinstance(cache_key, JsonResponse):
        return cache_key
    # aget/aset are sync_to_async of get/set: a thread hop each, the loop stays free.
    stats = await cache.aget(cache_key)
    hit = stats is not None
    if not hit:
        stats = await sync_to_async(order_stats)()
        await cache.aset(cache_key, stats, timeout=300)
    return _marked(stats, hit)


# Invalidation (django-redis only) #######################################################


def _needs_django_redis() -> JsonResponse | None:
    if isinstance(caches["default"], DjangoRedisCache):
        return None
    return JsonResponse(
        {"error": "delete_pattern and key listing need django-redis (LAB_CACHE=django-redis); "
                  "Django's own cache backends have no pattern operations."},
        status=501,
    )


@csrf_exempt
@require_POST
def invalidate(request: HttpRequest) -> JsonResponse:
    if (refusal := _needs_django_redis()) is not None:
        return refusal
    # The guide's invalidate_items_cache(): SCAN for the keys, DEL them in a pipeline.
    return JsonResponse({"deleted": cache.delete_pattern("items:*")})


@require_GET
def keys(request: HttpRequest) -> JsonResponse:
    if (refusal := _needs_django_redis()) is not None:
        return refusal
    pattern = request.GET.get("pattern", "items:*")
    if not _PATTERN.fullmatch(pattern):
        message = ("pattern must be 1 to 100 letters, digits or . _ - : and the glob "
                   f"characters * ? [ ], got {pattern!r}.")
        return JsonResponse({"error": message}, status=400)
    from django_redis import get_redis_connection

    backend = caches["default"]
    # The pattern as delete_pattern builds it: ":1:items:*" (prefix and version added).
    match = str(backend.client.make_pattern(pattern))
    raw = get_redis_connection("default")
    found = sorted(key.decode() for key in raw.scan_iter(match=match, count=1000))
    return JsonResponse({"pattern": match, "keys": found})


urlpatterns = [
    path("expensive", expensive),
    path("cached-page", cached_page),
    path("cached-page-async", cached_page_async),
    path("ticker", ticker),
    path("manual", manual),
    path("manual-async", manual_async),
    path("invalidate", invalidate),
    path("keys", keys),
    path("stampede", l07_stampede.stampede),
    path("stampede-locked", l07_stampede.stampede_locked),
    path("stampede-page", l07_stampede.stampede_page),
    path("recomputes", l07_stampede.recomputes),
    path("recomputes/reset", l07_stampede.recomputes_reset),
]
