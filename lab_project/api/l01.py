"""
Lesson 1, ASGI vs WSGI: the same trivial and database-backed endpoints written as plain
``def`` views and as ``async def`` views.

Under WSGI an async view runs in a fresh event loop on a new thread per request; under
ASGI a sync view (and every sync-only middleware) runs in a thread via ``sync_to_async``.
Serving each pair under each kind of server shows what those hops cost.
"""

from typing import Any

from catalog.models import Item
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import path

from api.params import row_limit

DEFAULT_LIMIT = 10


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"message": "hello"})


async def hello_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"message": "hello"})


def _items(limit: int) -> QuerySet[Item, dict[str, Any]]:
    # .values() skips model instances: rows go straight to JSON.
    rows = Item.objects.order_by("id").values("id", "name", "category", "price", "quantity")
    return rows[:limit]


def items(request: HttpRequest) -> JsonResponse:
    limit = row_limit(request, DEFAULT_LIMIT)
    if isinstance(limit, JsonResponse):
        return limit
    return JsonResponse(list(_items(limit)), safe=False)


async def items_async(request: HttpRequest) -> JsonResponse:
    limit = row_limit(request, DEFAULT_LIMIT)
    if isinstance(limit, JsonResponse):
        return limit
    # The async ORM is sync_to_async underneath: one thread hop for the whole query.
    return JsonResponse([row async for row in _items(limit)], safe=False)


urlpatterns = [
    path("hello", hello),
    path("hello-async", hello_async),
    path("items", items),
    path("items-async", items_async),
]
