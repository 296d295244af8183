"""Section 4, Async ORM operations: decided from notebook 04's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "04_async_orm"


@claim('async-orm-get-items', section=4, notebook=NB,
       guide="get_items: aget, sync_to_async(list), async for, acount, aexists; JsonResponse({'items': items, 'count': count})",
       gives=("confirmed", "refuted", "depends"))
def async_orm_get_items(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for async-orm-get-items")


@claim('async-aggregation', section=4, notebook=NB,
       guide="stats = await Item.objects.aaggregate(avg_price=Avg('price'), total=Sum('quantity'))",
       gives=("confirmed", "refuted", "depends"))
def async_aggregation(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for async-aggregation")


@claim('dashboard-parallel', section=4, notebook=NB,
       guide='Parallel Database Queries: run multiple queries in parallel with asyncio.create_task + asyncio.gather',
       gives=("confirmed", "refuted", "depends"))
def dashboard_parallel(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for dashboard-parallel")
