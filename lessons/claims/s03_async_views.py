"""Section 3, Async views: decided from notebook 03's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "03_async_views"


@claim('async-view-as-written', section=3, notebook=NB,
       guide="The async view: await Item.objects.all().aiterator(); JsonResponse({'items': items})",
       gives=("confirmed", "refuted", "depends"))
def async_view_as_written(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for async-view-as-written")


@claim('async-for-external-api', section=3, notebook=NB,
       guide='Use async for external API calls',
       gives=("confirmed", "refuted", "depends"))
def async_for_external_api(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for async-for-external-api")


@claim('async-parallel-queries', section=3, notebook=NB,
       guide='Use async for multiple database queries (run in parallel)',
       gives=("confirmed", "refuted", "depends"))
def async_parallel_queries(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for async-parallel-queries")


@claim('sync-for-crud', section=3, notebook=NB,
       guide='Use sync for simple CRUD operations',
       gives=("confirmed", "refuted", "depends"))
def sync_for_crud(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for sync-for-crud")


@claim('sync-for-cpu', section=3, notebook=NB,
       guide='Use sync for CPU-bound processing',
       gives=("confirmed", "refuted", "depends"))
def sync_for_cpu(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for sync-for-cpu")
