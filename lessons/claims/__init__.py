"""The guide's claims, each with the rule that decides its verdict from recorded numbers.

One module per section of the guide (``s01_asgi_vs_wsgi`` ... ``s11_quick_reference``)
defines that section's claims with ``@claim(...)``: the guide's words, the notebook that
measures it, the verdicts its rule can give, and the rule itself.  Notebooks only record
numbers; ``Notebook.verdicts()`` and ``python -m lessons report`` apply these rules to
the records, so both always agree.  ``tests/test_claims.py`` feeds every rule synthetic
records that produce each verdict it declares.
"""

from lessons.claims._rules import (
    CLAIMS,
    VERDICTS,
    Claim,
    Missing,
    Records,
    Verdict,
    claim,
    confirmed,
    depends,
    evaluate,
    not_measured,
    raised,
    refuted,
)
from lessons.claims import (  # noqa: F401  (each module registers its section's claims)
    s01_asgi_vs_wsgi,
    s02_production_server,
    s03_async_views,
    s04_async_orm,
    s05_middleware,
    s06_ninja_vs_drf,
    s07_caching,
    s08_db_connections,
    s09_streaming,
    s10_profiling,
    s11_quick_reference,
)

__all__ = ["CLAIMS", "VERDICTS", "Claim", "Missing", "Records", "Verdict", "claim", "confirmed",
           "depends", "evaluate", "not_measured", "raised", "refuted"]
