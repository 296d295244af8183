"""
Cache backends that pretend Redis is on another host (``LAB_CACHE_DELAY_MS``).

The lab's Valkey runs on loopback, where a GET costs about 0.1 ms: a cache call that
blocks the event loop for that long is real but too small to see next to the noise of
a 2-core machine. A Redis in another rack or zone is 0.3 to 1 ms away, a cross-region
one tens of ms. These backends add that round trip: every call that would talk to
Redis first sleeps ``LAB_DELAY_MS`` (set by lab/settings.py from
``LAB_CACHE_DELAY_MS``), then does the real call.

``time.sleep`` blocks the calling thread exactly as a synchronous socket read waiting
for the network does (both release the GIL, neither lets that thread do anything
else), so whatever a slow Redis would block (a worker thread, or the event loop when a
sync cache call runs on it), this blocks the same way, for the same time.

One sleep per call, as one round trip: ``get_many``/``set_many``/``delete_many`` and
``delete_pattern`` are one call each here (a pipeline or one command; SCAN's extra round
trips are not simulated). The async methods (``aget``...) are ``sync_to_async`` of
these, so they sleep in a worker thread, as a real slow Redis would. django-redis's
``lock`` is not delayed (its acquire and release are redis-py calls of their own).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache.backends.redis import RedisCache
from django_redis.cache import RedisCache as DjangoRedisCache

# The calls that are one network round trip each, in both backends.
_ROUND_TRIPS = (
    "get", "set", "add", "delete", "touch", "has_key", "incr", "decr",
    "get_many", "set_many", "delete_many", "clear",
)  # fmt: skip


class _Delayed:
    """Sleep ``LAB_DELAY_MS`` before each round trip, then call the real backend."""

    _delay_s: float

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        params = dict(params)
        self._delay_s = float(params.pop("LAB_DELAY_MS", 0)) / 1000
        super().__init__(server, params)  # type: ignore[call-arg]


def _delayed(name: str) -> Any:
    def method(self: _Delayed, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self._delay_s)
        return getattr(super(_Delayed, self), name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in _ROUND_TRIPS:
    setattr(_Delayed, _name, _delayed(_name))


class DelayedRedisCache(_Delayed, RedisCache):
    """Django's built-in ``RedisCache`` (``LAB_CACHE=redis``), one RTT slower."""


class DelayedDjangoRedisCache(_Delayed, DjangoRedisCache):
    """django-redis's ``RedisCache`` (``LAB_CACHE=django-redis``), one RTT slower."""

    delete_pattern = _delayed("delete_pattern")
