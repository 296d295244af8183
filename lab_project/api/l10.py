"""
Lesson 10, profiling: a deliberately slow endpoint for the profilers to explain, and its
fix. ``LAB_PROFILER`` (silk, pyinstrument, debug-toolbar) profiles the requests to
these paths; ``LAB_INSTRUMENT=1`` counts their queries.

* ``GET /l10/slow-orders?limit=N`` (1 to 1000, default 50): the first N orders by id as
  ``[{"id","customer","amount","status"}, ...]``, built the way a profiler catches:

  - **N+1 queries**: the orders in one query, then ``order.customer`` read per order
    without ``select_related``, one more query each (Django's default ``FETCH_ONE``):
    1 + N queries. silk lists them (same SQL, N times); pyinstrument shows the time
    under ``__get__`` of the foreign key descriptor.
  - **Wasteful serialization**: each row goes through Django's serialization framework
    on its own (``serializers.serialize("json", [order])``: a serializer object, every
    field of the model, a JSON document) and straight back through ``json.loads``, only
    to pick two fields out of it. The profile shows it under ``serialize`` and
    ``loads``, once per order.

* ``GET /l10/fast-orders?limit=N``: the same body from one query (a JOIN through
  ``values_list("customer__name")``) and one ``json.dumps`` of plain tuples turned into
  dicts. Byte-identical to slow-orders: the same rendering function writes both.

``amount`` is a string with two decimals (a ``Decimal`` never becomes a float), as in
lesson 4's orders.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from catalog.models import Order
from django.core import serializers
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from api.l04 import MAX_ORDERS, _whole  # the same limit rules and 400 message as lesson 4

DEFAULT_LIMIT = 50


def _limit(request: HttpRequest) -> int | JsonResponse:
    return _whole(request, "limit", DEFAULT_LIMIT, 1, MAX_ORDERS)


def _row(order_id: int, customer: str, amount: Decimal, status: str) -> dict[str, Any]:
    return {"id": order_id, "customer": customer, "amount": f"{amount:.2f}", "status": status}


def _response(rows: list[dict[str, Any]]) -> HttpResponse:
    """Compact JSON (no spaces), UTF-8: the one rendering of both endpoints."""
    body = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
    return HttpResponse(body.encode(), content_type="application/json")


def _slow_row(order: Order) -> dict[str, Any]:
    # The whole model through Django's serializers, then parsed back, for two fields.
    fields = json.loads(serializers.serialize("json", [order]))[0]["fields"]
    # order.customer: one query per order (no select_related).
    return _row(order.id, order.customer.name, Decimal(fields["amount"]), fields["status"])


def slow_orders(request: HttpRequest) -> HttpResponse:
    limit = _limit(request)
    if isinstance(limit, JsonResponse):
        return limit
    orders = Order.objects.order_by("id")[:limit]
    return _response([_slow_row(order) for order in orders])


def fast_orders(request: HttpRequest) -> HttpResponse:
    limit = _limit(request)
    if isinstance(limit, JsonResponse):
        return limit
    # One query: SELECT order.id, customer.name, order.amount, order.status ... INNER JOIN.
    rows = Order.objects.order_by("id").values_list("id", "customer__name", "amount", "status")
    return _response([_row(*row) for row in rows[:limit]])


urlpatterns = [
    path("slow-orders", slow_orders),
    path("fast-orders", fast_orders),
]
