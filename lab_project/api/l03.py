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
views that differ only in ``def`` / ``async def``:

* ``/l03/cpu?ms=N`` and ``/l03/cpu-async?ms=N``: N ms of pure-Python CPU work (0 to
  1000). Under an ASGI server the ``async def`` one computes on the event loop's
  thread, so every other request of that worker waits; Django runs the ``def`` one in
  a thread (``sync_to_async``), which leaves the loop free (the GIL still has to be
  shared).
* ``/l03/blocking-lib``, ``/l03/async-blocking-lib``, ``/l03/async-blocking-lib-wrapped``:
  the upstream called with ``urllib.request``, the standard library's blocking HTTP
  client, standing in for any library without an async API. Called directly in an
  ``async def`` view it blocks the event loop for the whole wait (nothing raises: only
  Django's own sync APIs check); wrapped in ``sync_to_async`` it runs in a thread.
* ``/l03/poll?ms=N`` and ``/l03/poll-async?ms=N``: a long poll that waits N ms (0 to
  60000) for an event that does not come, then answers an empty list. The ``def`` one
  waits in its thread; the ``async def`` one as a suspended coroutine, yet under
  Django's ASGI handler its request still has a thread of its own, idle until the
  request ends (the per-request executor that ``request_started``'s sync receivers
  start): one OS thread per open poll either way.
* ``/l03/file?kb=N`` and ``/l03/file-async?kb=N``: read the first N KiB (1 to 4096,
  default 1024) of a 4 MiB file, written once per machine in the temporary directory
  (so it is in the page cache), and answer its size. asyncio has no asynchronous file
  I/O (Linux's epoll refuses regular files), so the ``async def`` view reads it with
  ``asyncio.to_thread``, a thread of the event loop's default executor, as aiofiles
  does.
* ``/l03/queries?n=3&ms=50&mode=gather|sequential``: ``n`` async ORM queries
  (``acount()``) that each sleep ``ms`` in PostgreSQL, gathered or awaited in turn; it
  answers the wall time the view measured (PostgreSQL only: 501 on SQLite).
* ``/l03/legacy`` and ``/l03/legacy-async``: the same sync ORM code (yesterday's code,
  unchanged) called from a ``def`` view (it works under WSGI and ASGI) and from an
  ``async def`` view, where Django raises ``SynchronousOnlyOperation`` (a 500).
* ``/l03/ws``: an ``async def`` view answering HTTP. A WebSocket handshake to the same
  path never reaches it: Django's ``ASGIHandler`` refuses every connection whose ASGI
  scope is not ``http`` (``ValueError``), before any URL is resolved.
"""

import asyncio
import contextvars
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
from asgiref.sync import sync_to_async
from catalog.models import Item
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

from api.params import sleeping_queries, whole

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


# CPU-bound work #########################################################################

MAX_CPU_MS = 1_000
_CHUNK = 1_000  # pure-Python iterations between two reads of the CPU clock


def _burn(ms: int) -> None:
    """``ms`` of this thread's CPU time in pure Python, holding the GIL: the same work
    whatever else competes for the core."""
    deadline = time.thread_time() + ms / 1000
    x = 0
    while time.thread_time() < deadline:
        for i in range(_CHUNK):
            x = (x + i * i) % 1_000_003


def cpu(request: HttpRequest) -> JsonResponse:
    ms = whole(request, "ms", None, 0, MAX_CPU_MS)
    if isinstance(ms, JsonResponse):
        return ms
    _burn(ms)
    return JsonResponse({"cpu_ms": ms})


async def cpu_async(request: HttpRequest) -> JsonResponse:
    """The same work in an async view: it runs on the event loop's thread."""
    ms = whole(request, "ms", None, 0, MAX_CPU_MS)
    if isinstance(ms, JsonResponse):
        return ms
    _burn(ms)
    return JsonResponse({"cpu_ms": ms})


# Long polling ###########################################################################

MAX_POLL_MS = 60_000


def poll(request: HttpRequest) -> JsonResponse:
    """A long poll: wait ``ms`` for an event (none comes here), then answer none. The
    thread that runs this view is held for the whole wait."""
    ms = whole(request, "ms", 1_000, 0, MAX_POLL_MS)
    if isinstance(ms, JsonResponse):
        return ms
    threading.Event().wait(ms / 1000)
    return JsonResponse({"events": [], "waited_ms": ms})


async def poll_async(request: HttpRequest) -> JsonResponse:
    """The same long poll as a coroutine: the view waits without a thread of its own
    (Django's handler still keeps this request's executor thread, idle, until it ends)."""
    ms = whole(request, "ms", 1_000, 0, MAX_POLL_MS)
    if isinstance(ms, JsonResponse):
        return ms
    try:
        await asyncio.wait_for(asyncio.Event().wait(), ms / 1000)
    except TimeoutError:
        pass
    return JsonResponse({"events": [], "waited_ms": ms})


# File I/O ###############################################################################

BLOB_KB = 4_096
_blob_lock = threading.Lock()


def _blob() -> Path:
    """A 4 MiB file of fixed bytes in the temporary directory, written once per machine
    and user (atomically: a reader never sees it half-written)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    blob = Path(tempfile.gettempdir()) / f"lab-l03-{uid}-{BLOB_KB}k.bin"
    with _blob_lock:
        if not blob.exists() or blob.stat().st_size != BLOB_KB * 1024:
            part = blob.with_name(f"{blob.name}.{os.getpid()}.part")
            part.write_bytes(bytes(range(256)) * (BLOB_KB * 4))
            part.replace(blob)
    return blob


def _read(kb: int) -> int:
    with open(_blob(), "rb") as f:
        return len(f.read(kb * 1024))


def file_read(request: HttpRequest) -> JsonResponse:
    kb = whole(request, "kb", 1_024, 1, BLOB_KB)
    if isinstance(kb, JsonResponse):
        return kb
    return JsonResponse({"bytes": _read(kb)})


async def file_read_async(request: HttpRequest) -> JsonResponse:
    """The same read from an async view: there is no asynchronous file read in asyncio,
    so it goes to a thread (``asyncio.to_thread``), as aiofiles does."""
    kb = whole(request, "kb", 1_024, 1, BLOB_KB)
    if isinstance(kb, JsonResponse):
        return kb
    return JsonResponse({"bytes": await asyncio.to_thread(_read, kb)})


# Several queries in one async view ######################################################

QUERY_MODES = ("gather", "sequential")


async def queries(request: HttpRequest) -> JsonResponse:
    """``n`` async ORM queries that each sleep ``ms`` in PostgreSQL, gathered (the
    guide's "run in parallel") or awaited in turn; answers the time the view took."""
    asked = sleeping_queries(request, 50, QUERY_MODES)
    if isinstance(asked, JsonResponse):
        return asked
    n, ms, mode = asked

    def one() -> Awaitable[int]:
        sleeping = Item.objects.filter(pk=1).extra(where=["pg_sleep(%s) IS NOT NULL"],
                                                   params=[ms / 1000])
        return sleeping.acount()

    start = time.perf_counter()
    if mode == "gather":
        await asyncio.gather(*(one() for _ in range(n)))
    else:
        for _ in range(n):
            await one()
    elapsed_ms = round((time.perf_counter() - start) * 1000, 1)
    return JsonResponse({"mode": mode, "n": n, "ms": ms, "elapsed_ms": elapsed_ms})


# Legacy (sync) code #####################################################################


def legacy_report() -> list[dict[str, Any]]:
    """Yesterday's code, unchanged: the sync ORM."""
    return list(Item.objects.order_by("id").values("id", "name")[:5])


def legacy(request: HttpRequest) -> JsonResponse:
    return JsonResponse(legacy_report(), safe=False)


async def legacy_async(request: HttpRequest) -> JsonResponse:
    """The same call from an async view: Django raises SynchronousOnlyOperation."""
    return JsonResponse(legacy_report(), safe=False)


# WebSockets #############################################################################


async def ws(request: HttpRequest) -> JsonResponse:
    """An async view that answers HTTP. A WebSocket handshake to this path never gets
    here: Django's ASGIHandler raises ValueError for any scope that is not "http"."""
    return JsonResponse({"protocol": "http"})


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
