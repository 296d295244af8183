"""Section 9's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

import copy
from typing import Any

from claim_examples import Examples, check_examples

NB = "09_streaming"
W, A = "gunicorn-sync", "uvicorn"
GUIDE, WHOLE, ASYNC = "stream, sync generator", "JsonResponse", "stream, async generator"


def _row(first: float, total: float, peak: float) -> dict[str, float]:
    return {"first byte ms": first, "total ms": total, "peak MB": peak}


# What Django 6.1 measures here (10,000 items): the sync generator streams under WSGI and
# is buffered whole under ASGI; iterator() keeps the instances out of memory under both.
MEASURED: dict[str, Any] = {
    "largest response": {
        "items": 10_000,
        W: {WHOLE: _row(135, 136, 3.0), GUIDE: _row(1.7, 483, 0.01), ASYNC: _row(170, 460, 2.5)},
        A: {WHOLE: _row(66, 66, 3.7), GUIDE: _row(411, 572, 1.1), ASYNC: _row(2.9, 578, 0.2)},
    },
    "iterator": {
        "items": 10_000,
        W: {"iterator()": _row(1.7, 694, 0.05), "evaluated queryset": _row(4.8, 531, 7.9)},
        A: {"iterator()": _row(359, 546, 1.2), "evaluated queryset": _row(287, 455, 8.7)},
    },
}


def with_(mutate) -> dict:
    m = copy.deepcopy(MEASURED)
    mutate(m)
    return {NB: m}


def _big(m: dict, server: str, endpoint: str, **values: float) -> None:
    m["largest response"][server][endpoint].update({k.replace("_", " "): v for k, v in values.items()})


def _peak(m: dict, server: str, which: str, mb: float) -> None:
    m["iterator"][server][which]["peak MB"] = mb


EXAMPLES: Examples = {
    "streaming-large-responses": [
        (with_(lambda m: None), "depends"),                                         # WSGI only
        (with_(lambda m: _big(m, A, GUIDE, first_byte_ms=2.0)), "confirmed"),      # streamed under ASGI too
        (with_(lambda m: _big(m, W, GUIDE, first_byte_ms=120.0)), "refuted"),      # buffered under both
        (with_(lambda m: (_big(m, A, GUIDE, first_byte_ms=2.0), _big(m, W, GUIDE, peak_MB=2.9))),
         "depends"),                                                                # WSGI: no memory saved
    ],
    "iterator-large-querysets": [
        (with_(lambda m: None), "confirmed"),
        (with_(lambda m: _peak(m, A, "iterator()", 8.0)), "depends"),              # saves under WSGI only
        (with_(lambda m: (_peak(m, W, "evaluated queryset", 0.5), _peak(m, A, "evaluated queryset", 1.5))),
         "refuted"),                                                                # under 1 MB saved
        (with_(lambda m: (_peak(m, W, "iterator()", 6.0), _peak(m, A, "iterator()", 6.0))), "refuted"),
    ],
}


def test_section_9_rules() -> None:
    check_examples(EXAMPLES)


def test_evidence_names_both_servers() -> None:
    from lessons.claims import CLAIMS, Records, evaluate

    got = evaluate(CLAIMS["iterator-large-querysets"], Records({NB: MEASURED}))
    assert "gunicorn sync (WSGI) 0.05 MB against 7.9 MB" in got.evidence
    got = evaluate(CLAIMS["streaming-large-responses"], Records({NB: MEASURED}))
    assert got.evidence.startswith(
        "under gunicorn sync (WSGI) only; under uvicorn (ASGI) its body's first byte does not come "
        "within a quarter of JsonResponse's time: 10,000 items")
