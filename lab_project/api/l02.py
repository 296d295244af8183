"""
Lesson 2, production server configuration: endpoints that make a worker's limits visible.

* ``/l02/sleep?ms=N`` blocks its worker for N ms without using CPU, like a slow query
  or a slow external call in a sync view: try it against gunicorn's ``--timeout``, and
  see how many concurrent sleeps N workers (or threads) can hold.
* ``/l02/cpu?ms=N`` keeps its worker busy computing for N ms of CPU time in pure
  Python, holding the GIL: threads do not help here, processes do.
* ``/l02/sleep-async?ms=N`` is an ``async def`` view that awaits ``asyncio.sleep``: under
  an ASGI server the event loop stays free while it waits (gunicorn's ``--timeout``
  heartbeat keeps beating); ``/l02/block-async?ms=N`` is the mistake of calling
  ``time.sleep`` inside an ``async def`` view: it blocks the event loop, and with it the
  worker's heartbeat.
* ``/l02/pid`` says which worker process answered, to watch ``--max-requests``
  recycle workers. (The one body in ``api`` that varies between runs: that is its point.)
"""

import asyncio
import os
import time

from django.http import HttpRequest, JsonResponse
from django.urls import path

from api.params import whole

MAX_SLEEP_MS = 60_000
MAX_CPU_MS = 1_000
# Pure-Python iterations between two reads of the CPU clock: about 20 to 50 µs of work,
# so the clock (a system call) is a small part of the time burnt and the overshoot tiny.
_CHUNK = 1_000


def _ms(request: HttpRequest, maximum: int) -> int | JsonResponse:
    """The required ``ms`` query parameter, or the 400 response explaining why not."""
    missing = f"ms is missing: give a whole number from 0 to {maximum}, e.g. ?ms=100."
    return whole(request, "ms", None, 0, maximum, missing=missing)


def sleep(request: HttpRequest) -> JsonResponse:
    ms = _ms(request, MAX_SLEEP_MS)
    if isinstance(ms, JsonResponse):
        return ms
    time.sleep(ms / 1000)
    return JsonResponse({"slept_ms": ms})


async def sleep_async(request: HttpRequest) -> JsonResponse:
    ms = _ms(request, MAX_SLEEP_MS)
    if isinstance(ms, JsonResponse):
        return ms
    await asyncio.sleep(ms / 1000)
    return JsonResponse({"slept_ms": ms})


async def block_async(request: HttpRequest) -> JsonResponse:
    ms = _ms(request, MAX_SLEEP_MS)
    if isinstance(ms, JsonResponse):
        return ms
    time.sleep(ms / 1000)  # deliberately blocking: nothing else runs on this event loop meanwhile
    return JsonResponse({"slept_ms": ms})


def cpu(request: HttpRequest) -> JsonResponse:
    ms = _ms(request, MAX_CPU_MS)
    if isinstance(ms, JsonResponse):
        return ms
    # CPU time of this thread, not wall time: the view always does the same amount of
    # work, so when workers or threads compete for cores the extra latency shows up in
    # the measurement instead of silently shrinking the work.
    deadline = time.thread_time() + ms / 1000
    x = 0
    while time.thread_time() < deadline:
        for i in range(_CHUNK):
            x = (x + i * i) % 1_000_003
    return JsonResponse({"cpu_ms": ms})


def pid(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("sleep", sleep),
    path("sleep-async", sleep_async),
    path("block-async", block_async),
    path("cpu", cpu),
    path("pid", pid),
]
