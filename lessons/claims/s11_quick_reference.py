"""Section 11, Quick reference: decided from notebook 11's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "11_quick_reference"


@claim('checklist', section=11, notebook=NB,
       guide='Optimization checklist: ASGI, async views, minimal middleware, Ninja over DRF, CONN_MAX_AGE, Redis caching, silk, iterator(), streaming, query timeouts',
       gives=("confirmed", "refuted", "depends"))
def checklist(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for checklist")


@claim('latency-budget', section=11, notebook=NB,
       guide='10ms latency budget: Middleware 1ms, Auth check 1ms, ORM query 4ms, Serialization 2ms, Response 2ms',
       gives=("confirmed", "refuted", "depends"))
def latency_budget(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for latency-budget")


@claim('benchmark-summary', section=11, notebook=NB,
       guide='Django + Gunicorn (WSGI) ~1,500 req/s; + Uvicorn (ASGI) ~3,000; Django Ninja ~4,000; Raw Django ~6,000',
       gives=("confirmed", "refuted", "depends"))
def benchmark_summary(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for benchmark-summary")
