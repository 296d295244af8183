"""
Lesson 9, response streaming: one JSON list of ``n`` items, built whole or streamed.

* ``GET /l09/json?n=N``: ``JsonResponse`` of the whole list, built in memory first.
* ``GET /l09/stream-sync?n=N``: the guide's ``StreamingHttpResponse`` over a sync
  generator (``'['``, then ``','`` and one ``json.dumps`` per item, then ``']'``) reading
  ``.iterator(chunk_size=100)``.
* ``GET /l09/stream-async?n=N``: the same chunks from an async generator reading
  ``.aiterator(chunk_size=100)`` (one thread hop per 100 rows).
* ``GET /l09/guide-iterator``: the guide's view exactly as written: a sync generator
  over ``Item.objects.iterator(chunk_size=100)`` (model instances, every column, every
  item, in the order PostgreSQL returns them), ``json.dumps`` with its default
  separators.
* ``GET /l09/guide-list``: the same view with ``Item.objects.all()`` in place of
  ``.iterator(chunk_size=100)``: iterating a queryset evaluates it whole (every row
  fetched and every instance built into its result cache) before the first item is
  yielded. The two differ only in ``iterator()``, so their memory is ``iterator()``'s
  effect (lesson 9 measures it).

What ``iterator(chunk_size=100)`` does on PostgreSQL (Django 6.1,
django/db/models/query.py and django/db/backends/postgresql/base.py): it declares a
server-side cursor (``WITH HOLD``, since it runs in autocommit) and fetches 100 rows
per round trip, building each instance as the loop reaches its row; without it,
psycopg receives the whole result and Django builds every instance before the loop body
runs once.

The first three give the same bytes: compact JSON (``{"id":1,"name":"..."}``, items
separated by ``,``), ``application/json``. ``n`` is 1 to 100,000 (default 1,000). The
two guide views give each other's items (as sets: neither orders them).

What each server does with them (Django 6.1, django/http/response.py): under WSGI a sync
iterator streams; under ASGI Django cannot iterate a sync generator on the event loop,
so ``StreamingHttpResponse.__aiter__`` warns "StreamingHttpResponse must consume
synchronous iterators in order to serve them asynchronously. Use an asynchronous
iterator instead." and runs ``list(generator)`` in a thread: the whole body is built
before its first byte leaves. The mirror image holds for an async generator under
WSGI ("...must consume asynchronous iterators in order to serve them synchronously...").

Rows: the guide iterates model instances over every column; here the first three read the
same two columns with ``.values("id", "name")`` (ordered by id), so they differ only in
how the body is built and sent. The seed has 10,000 items, fewer than the largest
``n``: past the last item the rows start again from the first (a new query each pass,
so every row really comes from the database), with ids shifted by the highest id per
pass (item 7 of the second pass is id ``max_id + 7``), which keeps ids unique.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from catalog.models import Item
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import path

from api.params import whole

MAX_ITEMS = 100_000
DEFAULT_ITEMS = 1_000
CHUNK_SIZE = 100
SEPARATORS = (",", ":")


def _n(request: HttpRequest) -> int | JsonResponse:
    return whole(request, "n", DEFAULT_ITEMS, 1, MAX_ITEMS)


def _pass(remaining: int) -> Any:
    """One pass over the items, at most ``remaining`` rows."""
    return Item.objects.order_by("id").values("id", "name")[:remaining]


def _rows(n: int) -> Iterator[dict[str, Any]]:
    """``n`` rows, passing over the items as many times as needed."""
    produced, shift, max_id = 0, 0, 0
    while produced < n:
        before = produced
        for row in _pass(n - produced).iterator(chunk_size=CHUNK_SIZE):
            max_id = max(max_id, row["id"])
            yield {"id": row["id"] + shift, "name": row["name"]}
            produced += 1
        if produced == before:  # no items at all
            return
        shift += max_id


async def _arows(n: int) -> AsyncIterator[dict[str, Any]]:
    """``_rows`` with the async ORM: the same rows, in the same order."""
    produced, shift, max_id = 0, 0, 0
    while produced < n:
        before = produced
        async for row in _pass(n - produced).aiterator(chunk_size=CHUNK_SIZE):
            max_id = max(max_id, row["id"])
            yield {"id": row["id"] + shift, "name": row["name"]}
            produced += 1
        if produced == before:
            return
        shift += max_id


def as_json(request: HttpRequest) -> JsonResponse:
    n = _n(request)
    if isinstance(n, JsonResponse):
        return n
    return JsonResponse(list(_rows(n)), safe=False, json_dumps_params={"separators": SEPARATORS})


def stream_sync(request: HttpRequest) -> StreamingHttpResponse | JsonResponse:
    n = _n(request)
    if isinstance(n, JsonResponse):
        return n

    def generate() -> Iterator[str]:
        yield "["
        first = True
        for item in _rows(n):
            if not first:
                yield ","
            yield json.dumps({"id": item["id"], "name": item["name"]}, separators=SEPARATORS)
            first = False
        yield "]"

    return StreamingHttpResponse(generate(), content_type="application/json")


async def stream_async(request: HttpRequest) -> StreamingHttpResponse | JsonResponse:
    n = _n(request)
    if isinstance(n, JsonResponse):
        return n

    async def generate() -> AsyncIterator[str]:
        yield "["
        first = True
        async for item in _arows(n):
            if not first:
                yield ","
            yield json.dumps({"id": item["id"], "name": item["name"]}, separators=SEPARATORS)
            first = False
        yield "]"

    return StreamingHttpResponse(generate(), content_type="application/json")


def guide_iterator(request: HttpRequest) -> StreamingHttpResponse:
    """The guide's ``stream_large_response``, verbatim."""

    def generate():  # type: ignore[no-untyped-def]
        yield "["
        first = True
        for item in Item.objects.iterator(chunk_size=100):
            if not first:
                yield ","
            yield json.dumps({"id": item.id, "name": item.name})
            first = False
        yield "]"

    return StreamingHttpResponse(generate(), content_type="application/json")


def guide_list(request: HttpRequest) -> StreamingHttpResponse:
    """The guide's view without ``iterator()``: the queryset is evaluated whole."""

    def generate():  # type: ignore[no-untyped-def]
        yield "["
        first = True
        for item in Item.objects.all():
            if not first:
                yield ","
            yield json.dumps({"id": item.id, "name": item.name})
            first = False
        yield "]"

    return StreamingHttpResponse(generate(), content_type="application/json")


urlpatterns = [
    path("json", as_json),
    path("stream-sync", stream_sync),
    path("stream-async", stream_async),
    path("guide-iterator", guide_iterator),
    path("guide-list", guide_list),
]
