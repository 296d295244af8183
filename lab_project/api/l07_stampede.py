"""
Lesson 7, the cache stampede: what ``cache.get`` / miss / ``cache.set`` does when many
requests miss the same key at once, and a lock that fixes it.

* ``GET /l07/stampede?key=K&ms=M`` is the guide's manual-caching pattern around a slow
  recompute (``pg_sleep(M/1000)`` then the real order statistics). N requests that miss
  ``K`` together all recompute: N slow queries hit the database at the moment it is
  already busiest (a cold start, an expiry, an invalidation).
* ``GET /l07/stampede-page?key=K&ms=M`` is the same slow recompute under the guide's
  ``@cache_page`` instead: the decorator keys the page by its URL (``key`` and ``ms``
  included) and does get / miss / view / set like the manual pattern, so N requests that
  miss a page together all run the view. It answers ``{"key": K, "stats": [...]}``.
* ``GET /l07/stampede-locked?key=K&ms=M`` lets one request recompute while the others
  wait for its value. The lock is django-redis's ``cache.lock`` (redis-py's ``Lock``:
  ``SET NX PX`` with a random token, released by a Lua compare-and-delete, so a
  request never releases a lock it no longer owns); on backends without ``lock``
  (Django's own ``RedisCache``, LocMem) ``cache.add`` is the lock (also an atomic
  "set if absent"; its release is a plain delete). Both locks expire after the
  recompute's length plus a margin, so a crashed holder cannot block the key for
  good. Waiters do not queue on the lock: they poll the *value* every ``POLL_S`` and
  return as soon as it lands, all at once, instead of taking the lock one by one.
  Whoever gets the lock looks at the cache once more before recomputing (the value
  may have landed between its miss and its lock).

``stampede`` and ``stampede-locked`` answer ``{"key": K, "recomputed": true|false,
"stats": [...]}``. Every recompute
also increments a counter kept *in the cache* (``cache.add`` + ``cache.incr``, atomic in
Redis), so with Redis it counts across every worker and server process:
``GET /l07/recomputes`` reads it, ``POST /l07/recomputes/reset`` sets it to 0, neither
touching the database. With LocMem the counter, like the cache and the lock, is per
process. With ``LAB_CACHE=none`` (DummyCache stores nothing) these endpoints answer 501.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_page
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from api.order_stats import order_stats
from api.params import key, needs_postgresql, whole

MAX_SLEEP_MS = 5_000
TIMEOUT_S = 300  # how long a recomputed value stays cached, as in the guide
POLL_S = 0.01  # how often a waiter looks for the value: at most this much extra latency
LOCK_MARGIN_S = 10  # the lock outlives the recompute by this much, then expires
RECOMPUTES_KEY = "l07:recomputes"


# Parameters and refusals ################################################################


def _params(request: HttpRequest) -> tuple[str, int] | JsonResponse:
    name = key(request, "default")
    if isinstance(name, JsonResponse):
        return name
    ms = whole(request, "ms", 200, 0, MAX_SLEEP_MS)
    if isinstance(ms, JsonResponse):
        return ms
    return name, ms


def _needs_a_cache() -> JsonResponse | None:
    if not isinstance(caches["default"], DummyCache):
        return None
    return JsonResponse(
        {"error": "This endpoint needs a cache that stores values, but LAB_CACHE is none "
                  "(DummyCache)."},
        status=501,
    )


# The recompute and its counter ##########################################################


def _count_recompute() -> None:
    cache = caches["default"]
    cache.add(RECOMPUTES_KEY, 0, timeout=None)  # no-op when the counter exists
    cache.incr(RECOMPUTES_KEY)


def _recompute(ms: int) -> list[dict[str, Any]]:
    """The slow path a miss pays: ``ms`` of database time, then the real statistics."""
    _count_recompute()
    if ms:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(%s)", [ms / 1000])
    return order_stats()


def _answer(name: str, recomputed: bool, stats: list[dict[str, Any]]) -> JsonResponse:
    return JsonResponse({"key": name, "recomputed": recomputed, "stats": stats})


def _checked(request: HttpRequest) -> tuple[str, int] | JsonResponse:
    params = _params(request)
    if isinstance(params, JsonResponse):
        return params
    refusal = _needs_a_cache() or (needs_postgresql() if params[1] else None)
    return refusal if refusal is not None else params


# Views ##################################################################################


@require_GET
def stampede(request: HttpRequest) -> JsonResponse:
    params = _checked(request)
    if isinstance(params, JsonResponse):
        return params
    name, ms = params
    cache, key = caches["default"], f"stampede:{name}"
    stats = cache.get(key)
    recomputed = stats is None
    if recomputed:
        stats = _recompute(ms)
        cache.set(key, stats, timeout=TIMEOUT_S)
    return _answer(name, recomputed, stats)


@cache_page(TIMEOUT_S)
@require_GET
def stampede_page(request: HttpRequest) -> JsonResponse:
    params = _checked(request)
    if isinstance(params, JsonResponse):
        return params  # not cached: cache_page stores 200 responses only
    name, ms = params
    return JsonResponse({"key": name, "stats": _recompute(ms)})


def _try_lock(name: str, timeout_s: float) -> Callable[[], Any] | None:
    """Take the lock ``name`` without waiting: its release function, or None if taken."""
    cache = caches["default"]
    if hasattr(cache, "lock"):  # django-redis
        lock = cache.lock(name, timeout=timeout_s)
        return lock.release if lock.acquire(blocking=False) else None
    if cache.add(name, "locked", timeout=math.ceil(timeout_s)):
        return lambda: cache.delete(name)
    return None


@require_GET
def stampede_locked(request: HttpRequest) -> JsonResponse:
    params = _checked(request)
    if isinstance(params, JsonResponse):
        return params
    name, ms = params
    cache, key = caches["default"], f"stampede:{name}"
    lock_s = ms / 1000 + LOCK_MARGIN_S
    # A holder that died leaves the lock until it expires; wait that long, no longer.
    deadline = time.monotonic() + lock_s + 1
    while True:
        stats = cache.get(key)
        if stats is not None:
            return _answer(name, False, stats)
        release = _try_lock(f"lock:{key}", lock_s)
        if release is not None:
            try:
                stats = cache.get(key)
                recomputed = stats is None
                if recomputed:
                    stats = _recompute(ms)
                    cache.set(key, stats, timeout=TIMEOUT_S)
            finally:
                release()
            return _answer(name, recomputed, stats)
        if time.monotonic() > deadline:
            message = f"Gave up waiting for another request to recompute {name!r}."
            return JsonResponse({"error": message}, status=503)
        time.sleep(POLL_S)


@require_GET
def recomputes(request: HttpRequest) -> JsonResponse:
    if (refusal := _needs_a_cache()) is not None:
        return refusal
    cache = caches["default"]
    return JsonResponse({
        "recomputes": cache.get(RECOMPUTES_KEY, 0),
        # LocMem: this worker's count only.
        "shared_by_workers": not isinstance(cache, LocMemCache),
    })


@csrf_exempt
@require_POST
def recomputes_reset(request: HttpRequest) -> JsonResponse:
    if (refusal := _needs_a_cache()) is not None:
        return refusal
    caches["default"].set(RECOMPUTES_KEY, 0, timeout=None)
    return JsonResponse({"recomputes": 0})
