"""Section 5, Middleware optimization: decided from notebook 05's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "05_middleware"


@claim('minimal-middleware', section=5, notebook=NB,
       guide='Minimal middleware stack for APIs: Security, Session (only if using sessions), Common; skip CSRF, auth, messages',
       gives=("confirmed", "refuted", "depends"))
def minimal_middleware(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for minimal-middleware")


@claim('skip-csrf-for-apis', section=5, notebook=NB,
       guide='CsrfViewMiddleware: skip for APIs',
       gives=("confirmed", "refuted", "depends"))
def skip_csrf_for_apis(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for skip-csrf-for-apis")


@claim('timing-middleware', section=5, notebook=NB,
       guide='Custom TimingMiddleware: time.perf_counter() around get_response, X-Request-Duration header',
       gives=("confirmed", "refuted", "depends"))
def timing_middleware(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for timing-middleware")
