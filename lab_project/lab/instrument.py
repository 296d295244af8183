"""
Exact per-process counters of what a request costs beyond its view: thread hops, OS
threads started and SQL statements (enabled by ``LAB_INSTRUMENT=1``, off by default).

Timing shows *that* a configuration is slow; these counters show *why*, as integers a
notebook can divide by the number of requests it sent:

* ``sync_to_async``: calls of ``asgiref.sync.SyncToAsync.__call__``, each one hop from
  the event loop into a worker thread and back;
* ``async_to_sync``: calls of ``asgiref.sync.AsyncToSync.__call__``, each one hop from a
  sync thread onto an event loop (under WSGI, an async view costs one of these, on a
  brand-new loop in a brand-new thread);
* ``threads_started``: calls of ``threading.Thread.start`` (thread pools included: their
  workers are ``threading.Thread`` objects);
* ``queries``: SQL statements run through Django's cursors (``execute`` or
  ``executemany``), counted by an execute wrapper on every connection. A backend's own
  housekeeping on the raw driver connection (the time zone set at connect, the health
  check's ping, the pool's checks) bypasses Django's cursors and is not counted;
* ``requests``: HTTP requests handed to Django (the counters endpoint excluded).

The classes' ``__call__`` methods are patched, not the module-level ``sync_to_async``
and ``async_to_sync`` names: instances made before ``install()`` and references other
modules imported earlier all go through the class, so nothing escapes the count.

The counters are read by ``GET /__lab__/counters``, answered by the small WSGI or ASGI
wrapper below *in front of* Django, so reading them costs no hop, thread, query or
request. Under ASGI a server may start reading the next request on a keep-alive
connection while the previous one is still finishing (Django closes the response in a
thread after the last byte is sent); the ASGI endpoint therefore first waits (up to
``QUIET_WAIT_S``) until no Django request of this process is in flight, so a notebook
that sends N requests one after another and reads the counters gets exact deltas. WSGI
servers finish the application call, ``close()`` included, before they read the next
request from the same connection, so the WSGI wrapper needs no wait.

Counters are per process (the body carries the ``pid``): with several workers, read
them once per worker or use one worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync

PATH = "/__lab__/counters"
NAMES = ("sync_to_async", "async_to_sync", "threads_started", "queries", "requests")
# How long the ASGI counters endpoint waits for in-flight requests to finish: enough for
# a trailing response.close() hop, short enough not to stall a notebook reading under load.
QUIET_WAIT_S = 1.0

# One lock for every counter: `+= 1` on a dict item is not atomic across threads, and
# the counts must be exact. An uncontended lock costs well under a microsecond.
_lock = threading.Lock()
_counts = dict.fromkeys(NAMES, 0)
_in_flight = 0  # ASGI requests inside Django right now (under _lock)
_installed = False


def _add(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def snapshot() -> dict[str, int]:
    """The counters now, plus this process's id."""
    with _lock:
        return {**_counts, "pid": os.getpid()}


# Patches ################################################################################


def install() -> None:
    """Patch asgiref and threading and hook every database connection. Idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True

    original_s2a = SyncToAsync.__call__
    original_a2s = AsyncToSync.__call__
    original_start = threading.Thread.start

    async def sync_to_async_call(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        __traceback_hide__ = True  # noqa: F841  (Django's debug page skips this frame)
        _add("sync_to_async")
        return await original_s2a(self, *args, **kwargs)

    def async_to_sync_call(self: AsyncToSync, *args: Any, **kwargs: Any) -> Any:
        __traceback_hide__ = True  # noqa: F841
        _add("async_to_sync")
        return original_a2s(self, *args, **kwargs)

    def thread_start(self: threading.Thread) -> None:
        _add("threads_started")
        original_start(self)

    SyncToAsync.__call__ = sync_to_async_call  # type: ignore[method-assign]
    AsyncToSync.__call__ = async_to_sync_call  # type: ignore[method-assign]
    threading.Thread.start = thread_start  # type: ignore[method-assign]

    # A forked child (gunicorn --preload) inherits the counters, which is fine for
    # deltas, but must not inherit a lock some other thread held at the fork.
    os.register_at_fork(after_in_child=_new_lock)

    from django.db import connections
    from django.db.backends.signals import connection_created

    connection_created.connect(_hook_connection, dispatch_uid="lab.instrument")
    for connection in connections.all(initialized_only=True):
        _hook_connection(None, connection)


def _new_lock() -> None:
    global _lock
    _lock = threading.Lock()


def _count_query(execute: Callable[..., Any], sql: str, params: Any, many: bool,
                 context: dict[str, Any]) -> Any:
    _add("queries")
    return execute(sql, params, many, context)


def _hook_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Add the counting wrapper once per connection object.

    ``connection_created`` fires on every (re)connect of the same ``DatabaseWrapper``:
    per request with ``CONN_MAX_AGE=0``, and per checkout with Django's pool. The
    wrapper list lives on that object, so it must not grow by one each time.
    """
    if _count_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_query)


# The endpoint ###########################################################################


def _body() -> bytes:
    return json.dumps(snapshot()).encode()


_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


def wsgi(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wrap a WSGI application: answer the counters path, count everything else."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "GET":
            body = _body()
            start_response("200 OK", [*_HEADERS, ("Content-Length", str(len(body)))])
            return [body]
        _add("requests")
        return app(environ, start_response)

    return application


def asgi(app: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an ASGI application: answer the counters path, count everything else."""

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if scope["path"] == PATH and scope["method"] == "GET":
            await _wait_until_quiet()
            body = _body()
            headers = [(k.lower().encode(), v.encode()) for k, v in _HEADERS]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        global _in_flight
        with _lock:
            _counts["requests"] += 1
            _in_flight += 1
        try:
            await app(scope, receive, send)
        finally:
            with _lock:
                _in_flight -= 1

    return application


async def _wait_until_quiet() -> None:
    """Let requests whose response is already sent finish their trailing work."""
    deadline = time.monotonic() + QUIET_WAIT_S
    while _in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
