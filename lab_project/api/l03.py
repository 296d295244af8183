"""
Lesson 3, async views: calling a slow external API (the ``upstream`` stand-in at
``LAB_UPSTREAM_URL``) from sync and async views, once and twice per request.

A sync view holds its worker (or thread) for the whole wait; an async view under an
ASGI server gives the event loop back while it waits, so one process serves many waits
at once. Two calls in one request show the other half: awaiting them one after the
other takes the sum of the delays, ``asyncio.gather`` about the longest.

HTTP clients are made once and reused, as production code must: a client per request
pays a new TCP connection every time. The sync ``httpx.Client`` is
thread-safe, so one per process serves every thread. An ``httpx.AsyncClient`` belongs
to the event loop it first ran on, so there is one per running loop. Under an ASGI
server that is one per worker, made once. Under a WSGI server every async request runs
on a new loop that ``async_to_sync`` creates and closes, so each such request makes a
client and a connection, and closes them when its loop ends: a cost of async views
under WSGI that this lesson shows.

``?delay_ms=N`` (0 to 60000) is passed to the upstream; without it the upstream uses
its own default. Timeouts are explicit (10 s); an upstream that fails, times out or
answers with an error becomes a 502 here.

The guide's other "use async for" / "use sync for" lines each get a pair (or trio) of
views that differ only in ``def`` / ``async def``; CPU work, a long poll, a file read,
several queries in one view and WebSockets are in ``api/l03_workloads.py`` (served
under ``/l03/`` too, described there); here:

* ``/l03/blocking-lib``, ``/l03/async-blocking-lib``, ``/l03/async-blocking-lib-wrapped``:
  the upstream called with ``urllib.request``, the standard library's blocking HTTP
  client, standing in for any library without an async API. Called directly in an
  ``async def`` view it blocks the event loop for the whole wait (nothing raises: only
  Django's own sync APIs check); wrapped in ``sync_to_async`` it runs in a thread.
* ``/l03/legacy`` and ``/l03/legacy-async``: the same sync ORM code (yesterday's code,
  unchanged) called from a ``def`` view (it works under WSGI and ASGI) and from an
  ``async def`` view, where Django raises ``SynchronousOnlyOperation`` (a 500).
"""

import asyncio
import contextvars
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
from asgiref.sync import sync_to_async
from catalog.models import Item
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

from api.l03_workloads import (cpu, cpu_async, file_read, file_read_async, poll, poll_async,
                                queries, ws)
from api.params import whole

TIMEOUT = httpx.Timeout(10.0)
# Enough connections that the client's own pool never queues requests in a lesson's
# load test (httpx's default, 100, would cap concurrency below the server's).
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
MAX_DELAY_MS = 60_000

# Building a client loads the CA bundle into a new SSL context (about 30 ms) unless it is
# given one: every client here shares this one (SSL contexts are safe to share).
_SSL_CONTEXT = httpx.create_ssl_context()

_client = httpx.Client(verify=_SSL_CONTEXT, timeout=TIMEOUT, limits=LIMITS)

_LoopEntry = tuple[Any, "asyncio.Task[None]"]
_loop_clients: dict[tuple[asyncio.AbstractEventLoop, str], _LoopEntry] = {}
_loop_clients_lock = threading.Lock()  # WSGI threads may run several loops at once


def _loop_client(kind: str, make: Callable[[], Any], close: Callable[[Any], Awaitable[None]]) -> Any:
    """The client of this ``kind`` for the running event loop, made on its first request."""
    loop = asyncio.get_running_loop()
    entry = _loop_clients.get((loop, kind))
    if entry is None:
        client = make()
        # The task is kept in the entry (a loop holds its tasks only weakly) and runs in
        # an empty context, so it does not keep this request's context variables alive.
        task = loop.create_task(_close_at_loop_end(client, close), context=contextvars.Context())
        with _loop_clients_lock:
            # Drop the entries of loops that have ended (their clients are closed).
            for ended in [key for key in _loop_clients if key[0].is_closed()]:
                del _loop_clients[ended]
            entry = _loop_clients[(loop, kind)] = (client, task)
    return entry[0]


def _async_client() -> httpx.AsyncClient:
    return _loop_client(
        "httpx",
        lambda: httpx.AsyncClient(verify=_SSL_CONTEXT, timeout=TIMEOUT, limits=LIMITS),
        lambda client: client.aclose(),
    )


def _aiohttp_session() -> aiohttp.ClientSession:
    return _loop_client(
        "aiohttp",
        lambda: aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=TIMEOUT.read),
            connector=aiohttp.TCPConnector(limit=LIMITS.max_connections, ssl=_SSL_CONTEXT),
        ),
        lambda session: session.close(),
    )


async def _close_at_loop_end(client: Any, close: Callable[[Any], Awaitable[None]]) -> None:
    """Close ``client`` when its loop shuts down.

    ``asyncio.run`` (which ``async_to_sync`` uses for each request under WSGI) cancels
    the tasks still pending when it finishes, while the loop can still run them: this
    one then closes the client's connections cleanly, inside the request, instead of
    leaving their sockets open until the garbage collector finds them. Under an ASGI
    server the loop, and so the client, lives as long as the worker.
    """
    try:
        await asyncio.get_running_loop().create_future()  # never completes
    finally:
        await close(client)


class UpstreamError(Exception):
    """The upstream did not give a JSON answer: becomes a 502 with this message."""


def _params(request: HttpRequest) -> dict[str, str] | JsonResponse:
    """The query for the upstream, or the 400 response explaining why not."""
    if "delay_ms" not in request.GET:
        return {}
    delay_ms = whole(request, "delay_ms", None, 0, MAX_DELAY_MS)
    if isinstance(delay_ms, JsonResponse):
        return delay_ms
    return {"delay_ms": request.GET["delay_ms"]}  # passed on as written


def _url() -> str | None:
    upstream = settings.LAB_UPSTREAM_URL
    return None if upstream is None else f"{upstream}/data"


def _not_configured() -> JsonResponse:
    return JsonResponse(
        {"error": "LAB_UPSTREAM_URL is not set: start lab_project/upstream and set it to "
                  "the upstream's URL, e.g. http://127.0.0.1:8001."},
        status=503,
    )


def _decode(url: str, response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise UpstreamError(f"The upstream at {url} answered HTTP {response.status_code}.")
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"The upstream at {url} did not answer with JSON.") from None


def _failed(url: str, exc: Exception) -> JsonResponse:
    if isinstance(exc, UpstreamError):
        message = str(exc)
    else:
        detail = str(exc).rstrip(".") or "no detail"
        message = f"The upstream at {url} failed: {type(exc).__name__}: {detail}."
    return JsonResponse({"error": message}, status=502)


def _fetch(url: str, params: dict[str, str]) -> Any:
    return _decode(url, _client.get(url, params=params))


async def _afetch(url: str, params: dict[str, str]) -> Any:
    return _decode(url, await _async_client().get(url, params=params))


async def _afetch_aiohttp(url: str, params: dict[str, str]) -> Any:
    async with _aiohttp_session().get(url, params=params) as response:
        if response.status != 200:
            raise UpstreamError(f"The upstream at {url} answered HTTP {response.status}.")
        try:
            return await response.json()
        except (ValueError, aiohttp.ContentTypeError):
            raise UpstreamError(f"The upstream at {url} did not answer with JSON.") from None


def _prepare(request: HttpRequest) -> tuple[str, dict[str, str]] | JsonResponse:
    url = _url()
    if url is None:
        return _not_configured()
    params = _params(request)
    if isinstance(params, JsonResponse):
        return params
    return url, params


def sync_upstream(request: HttpRequest) -> JsonResponse:
    prepared = _prepare(request)
    if isinstance(prepared, JsonResponse):
        return prepared
    url, params = prepared
    try:
        return JsonResponse({"upstream": _fetch(url, params)})
    except (httpx.HTTPError, UpstreamError) as exc:
        return _failed(url, exc)


async def async_upstream(request: HttpRequest) -> JsonResponse:
    prepared = _prepare(request)
    if isinstance(prepared, JsonResponse):
        return prepared
    url, params = prepared
    try:
        return JsonResponse({"upstream": await _afetch(url, params)})
    except (httpx.HTTPError, UpstreamError) as exc:
        return _failed(url, exc)


async def async_upstream_aiohttp(request: HttpRequest) -> JsonResponse:
    """The same call with aiohttp, the guide's client: its connection pool stays cheap
    with many connections open, where httpx's AsyncClient spends milliseconds of CPU
    per request managing its pool (measured in lesson 3)."""
    prepared = _prepare(request)
    if isinstance(prepared, JsonResponse):
        return prepared
    url, params = prepared
    try:
        return JsonResponse({"upstream": await _afetch_aiohttp(url, params)})
    except (aiohttp.ClientError, asyncio.TimeoutError, UpstreamError) as exc:
        return _failed(url, exc)


def sync_two(request: HttpRequest) -> JsonResponse:
    prepared = _prepare(request)
    if isinstance(prepared, JsonResponse):
        return prepared
    url, params = prepared
    try:
        return JsonResponse({"upstream": [_fetch(url, params), _fetch(url, params)]})
    except (httpx.HTTPError, UpstreamError) as exc:
        return _failed(url, exc)


async def async_two_sequential(request: HttpRequest) -> JsonResponse:
    prepared = _prepare(request)
    if isinstance(prepared, JsonResponse):
        return prepared
    url, params = prepared
    try:
        first = await _afetch(url, params)
        second = await _afetch(url, params)
    except (httpx.HTTPError, UpstreamError) as exc:
        return _failed(url, exc)
    return JsonResponse({"upstream": [first, second]})


async def async_two_gather(request: HttpRequest) -> JsonResponse:
    prepared = _prepare(request)
    if isinstance(prepared, JsonResponse):
        return prepared
    url, params = prepared
    # return_exceptions: both calls always finish (each bounded by the timeout), so a
    # failure of one never leaves the other running unobserved after the response.
    results = await asyncio.gather(
        _afetch(url, params), _afetch(url, params), return_exceptions=True
    )
    for result in results:
        if isinstance(result, (httpx.HTTPError, UpstreamError)):
            return _failed(url, result)
        if isinstance(result, BaseException):
            raise result
    return JsonResponse({"upstream": results})


# A library without an async API ########################################################


def _fetch_blocking(url: str, params: dict[str, str]) -> Any:
    """The upstream call through ``urllib.request``: blocking, with no async API."""
    target = f"{url}?{urlencode(params)}" if params else url
    try:
        with urllib.request.urlopen(target, timeout=TIMEOUT.read) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise UpstreamError(f"The upstream at {url} answered HTTP {exc.code}.") from None
    try:
        return json.loads(body)
    except ValueError:
        raise UpstreamError(f"The upstream at {url} did not answer with JSON.") from None


_BLOCKING_ERRORS = (OSError, UpstreamError)  # URLError and timeouts are OSErrors


def blocking_lib(request: HttpRequest) -> JsonResponse:
    prepared = _prepare(request)
    if isinstance(prepared, JsonResponse):
        return prepared
    url, params = prepared
    try:
        return JsonResponse({"upstream": _fetch_blocking(url, params)})
    except _BLOCKING_ERRORS as exc:
        return _failed(url, exc)


async def async_blocking_lib(request: HttpRequest) -> JsonResponse:
    """The blocking call made directly in an async view: the event loop (and so every
    other request of this worker) waits with it. Nothing warns."""
    prepared = _prepare(request)
    if isinstance(prepared, JsonResponse):
        return prepared
    url, params = prepared
    try:
        return JsonResponse({"upstream": _fetch_blocking(url, params)})
    except _BLOCKING_ERRORS as exc:
        return _failed(url, exc)


async def async_blocking_lib_wrapped(request: HttpRequest) -> JsonResponse:
    """The blocking call in ``sync_to_async``: under Django's ASGI handler it runs on
    this request's own thread (thread-sensitive), so the loop stays free."""
    prepared = _prepare(request)
    if isinstance(prepared, JsonResponse):
        return prepared
    url, params = prepared
    try:
        return JsonResponse({"upstream": await sync_to_async(_fetch_blocking)(url, params)})
    except _BLOCKING_ERRORS as exc:
        return _failed(url, exc)


# Legacy (sync) code #####################################################################


def legacy_report() -> list[dict[str, Any]]:
    """Yesterday's code, unchanged: the sync ORM."""
    return list(Item.objects.order_by("id").values("id", "name")[:5])


def legacy(request: HttpRequest) -> JsonResponse:
    return JsonResponse(legacy_report(), safe=False)


async def legacy_async(request: HttpRequest) -> JsonResponse:
    """The same call from an async view: Django raises SynchronousOnlyOperation."""
    return JsonResponse(legacy_report(), safe=False)


urlpatterns = [
    path("sync-upstream", sync_upstream),
    path("async-upstream", async_upstream),
    path("async-upstream-aiohttp", async_upstream_aiohttp),
    path("sync-two", sync_two),
    path("async-two-sequential", async_two_sequential),
    path("async-two-gather", async_two_gather),
    path("blocking-lib", blocking_lib),
    path("async-blocking-lib", async_blocking_lib),
    path("async-blocking-lib-wrapped", async_blocking_lib_wrapped),
    path("cpu", cpu),
    path("cpu-async", cpu_async),
    path("poll", poll),
    path("poll-async", poll_async),
    path("file", file_read),
    path("file-async", file_read_async),
    path("queries", queries),
    path("legacy", legacy),
    path("legacy-async", legacy_async),
    path("ws", ws),
]
