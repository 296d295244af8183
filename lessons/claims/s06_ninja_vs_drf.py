"""Section 6, Django Ninja vs DRF: decided from notebook 06's records.

TODO: the rules below are placeholders (always "not measured") until the notebook records
the numbers they read; each must be replaced by a real rule.
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim

NB = "06_ninja_vs_drf"


@claim('ninja-faster-than-drf', section=6, notebook=NB,
       guide='Django Ninja (Faster) than DRF',
       gives=("confirmed", "refuted", "depends"))
def ninja_faster_than_drf(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for ninja-faster-than-drf")


@claim('framework-numbers', section=6, notebook=NB,
       guide='Django Ninja: ~4,000 req/s; DRF: ~1,500 req/s; Raw Django: ~6,000 req/s',
       gives=("confirmed", "refuted", "depends"))
def framework_numbers(r: Records) -> Verdict:
    raise Missing(NB, "TODO: a rule for framework-numbers")
