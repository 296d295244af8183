"""
Lesson 3, async views, the guide's other "use async for" / "use sync for" lines: views
that differ only in ``def`` / ``async def`` (served under ``/l03/`` by ``api/l03.py``,
which holds the upstream calls, the blocking library and the legacy code):

* ``/l03/cpu?ms=N`` and ``/l03/cpu-async?ms=N``: N ms of pure-Python CPU work (0 to
  1000). Under an ASGI server the ``async def`` one computes on the event loop's
  thread, so every other request of that worker waits; Django runs the ``def`` one in
  a thread (``sync_to_async``), which leaves the loop free (the GIL still has to be
  shared).
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
* ``/l03/ws``: an ``async def`` view answering HTTP. A WebSocket handshake to the same
  path never reaches it: Django's ``ASGIHandler`` refuses every connection whose ASGI
  scope is not ``http`` (``ValueError``), before any URL is resolved.
"""

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Awaitable
from pathlib import Path

from catalog.models import Item
from django.http import HttpRequest, JsonResponse

from api.params import sleeping_queries, whole


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


# WebSockets #############################################################################


async def ws(request: HttpRequest) -> JsonResponse:
    """An async view that answers HTTP. A WebSocket handshake to this path never gets
    here: Django's ASGIHandler raises ValueError for any scope that is not "http"."""
    return JsonResponse({"protocol": "http"})
