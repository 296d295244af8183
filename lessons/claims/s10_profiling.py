"""Section 10, Profiling: decided from notebook 10's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "10_profiling"


@claim('django-silk', section=10, notebook=NB,
       guide='Profile with django-silk: SilkyMiddleware early, SILKY_PYTHON_PROFILER = True; dashboard at /silk/',
       gives=("confirmed", "refuted", "depends"))
def django_silk(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for django-silk")


@claim('debug-toolbar', section=10, notebook=NB,
       guide='Django Debug Toolbar (Development): debug_toolbar app and middleware, INTERNAL_IPS',
       gives=("confirmed", "refuted", "depends"))
def debug_toolbar(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for debug-toolbar")
