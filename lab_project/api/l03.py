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
"""

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

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
    raw = request.GET.get("delay_ms")
    if raw is None:
        return {}
    if raw.isascii() and raw.isdigit() and int(raw) <= MAX_DELAY_MS:
        return {"delay_ms": raw}
    message = f"delay_ms must be a whole number from 0 to {MAX_DELAY_MS}, got {raw!r}."
    return JsonResponse({"error": message}, status=400)


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


urlpatterns = [
    path("sync-upstream", sync_upstream),
    path("async-upstream", async_upstream),
    path("async-upstream-aiohttp", async_upstream_aiohttp),
    path("sync-two", sync_two),
    path("async-two-sequential", async_two_sequential),
    path("async-two-gather", async_two_gather),
]
