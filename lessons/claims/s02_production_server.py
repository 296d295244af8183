"""Section 2, Production server configuration: decided from notebook 02's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "02_production_server"


@claim('workers-formula', section=2, notebook=NB,
       guide='Workers = (2 x CPU cores) + 1',
       gives=("confirmed", "refuted", "depends"))
def workers_formula(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for workers-formula")


@claim('uvicorn-workers-class', section=2, notebook=NB,
       guide='gunicorn --worker-class uvicorn.workers.UvicornWorker (production command)',
       gives=("confirmed", "refuted", "depends"))
def uvicorn_workers_class(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for uvicorn-workers-class")


@claim('max-requests-jitter', section=2, notebook=NB,
       guide='--max-requests 1000 --max-requests-jitter 50',
       gives=("confirmed", "refuted", "depends"))
def max_requests_jitter(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for max-requests-jitter")


@claim('timeout-keepalive', section=2, notebook=NB,
       guide='--timeout 30 --keep-alive 5',
       gives=("confirmed", "refuted", "depends"))
def timeout_keepalive(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for timeout-keepalive")
