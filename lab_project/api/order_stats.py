"""
The "expensive computation" lesson 7 caches: order statistics per status.

One aggregate over every order, grouped by status, joined to the customers (the
``from_new_customers`` count filters on the customer's sign-up date, so PostgreSQL must
join the two tables). On the default seed (20,000 orders, 1,000 customers) it costs a
few milliseconds of database work on every call (about 4-5 ms here): cheap enough to
call often, expensive enough that a cache hit (~0.1-0.3 ms) is a clear win.

The result is rendered to plain, stable JSON values: money as strings with two decimals
(``Sum``/``Avg``/``Max`` of a ``DecimalField`` are ``Decimal``s of varying scale, and
``Avg`` has many digits), so every endpoint that serves it gives the same bytes, and a
cached copy is indistinguishable from a fresh one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from catalog.models import Order
from django.db.models import Avg, Count, Max, Q, Sum

# The seed's sign-ups span 2025; "new" customers are those of its second half.
NEW_CUSTOMERS_SINCE = datetime(2025, 7, 1, tzinfo=UTC)


def _money(value: Any) -> str:
    return f"{value if value is not None else 0:.2f}"


def order_stats() -> list[dict[str, Any]]:
    """Per status: orders, revenue, average and largest amount, orders by new customers."""
    rows = (
        Order.objects.values("status")
        .annotate(
            orders=Count("pk"),
            revenue=Sum("amount"),
            average=Avg("amount"),
            largest=Max("amount"),
            from_new_customers=Count(
                "pk", filter=Q(customer__created__gte=NEW_CUSTOMERS_SINCE)
            ),
        )
        .order_by("status")
    )
    return [
        {
            "status": row["status"],
            "orders": row["orders"],
            "revenue": _money(row["revenue"]),
            "average": _money(row["average"]),
            "largest": _money(row["largest"]),
            "from_new_customers": row["from_new_customers"],
        }
        for row in rows
    ]
