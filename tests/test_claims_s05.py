"""Section 5's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

from claim_examples import Examples, check_examples

NB = "05_middleware"

RPS = {"gunicorn-sync": {"default": 1150.0, "minimal": 1330.0, "none": 1950.0},
       "uvicorn": {"default": 290.0, "minimal": 420.0, "none": 880.0}}


def _minimal(wsgi: tuple[float, float], asgi: tuple[float, float]) -> dict:
    """(median, lower quartile) of the paired default / minimal ratios, per interface."""
    return {NB: {"default / minimal in-process": {"wsgi": [*wsgi, wsgi[0] + 0.05],
                                                  "asgi": [*asgi, asgi[0] + 0.05]},
                 "stack rps": RPS}}


def _csrf(django_on: int, django_off: int, drf_on: int, drf_off: int = 200) -> dict:
    return {NB: {"tokenless POST": {"default": {"Django view": django_on, "DRF view": drf_on},
                                    "minimal": {"Django view": django_off, "DRF view": drf_off}}}}


def _timing(wsgi: float, asgi: float, present: float = 1.0) -> dict:
    return {NB: {"timing middleware hops, in-process": {"wsgi": {"none": 0, "guide": wsgi},
                                                        "asgi": {"none": 3, "guide": 3 + asgi}},
                 "guide header": {"requests": 20, "present": present, "reads 0.000": 0.6}}}


EXAMPLES: Examples = {
    "minimal-middleware": [
        (_minimal((1.25, 1.20), (1.50, 1.40)), "confirmed"),   # what Django 6.1 measures in-process
        (_minimal((1.03, 1.01), (1.50, 1.40)), "depends"),     # faster under ASGI only
        (_minimal((1.25, 0.98), (1.50, 1.40)), "depends"),     # WSGI's median clears, but not 3 rounds in 4
        (_minimal((1.25, 1.20), (1.04, 1.02)), "depends"),     # faster under WSGI only
        (_minimal((1.02, 0.97), (1.04, 1.01)), "refuted"),     # within the noise under both
    ],
    "skip-csrf-for-apis": [
        (_csrf(403, 200, 200), "depends"),     # Django 6.1 + DRF 3.18: DRF views are csrf_exempt
        (_csrf(403, 200, 403), "refuted"),     # if the middleware also guarded the API's views
        (_csrf(200, 200, 200), "confirmed"),   # if it guarded nothing
    ],
    "timing-middleware": [
        (_timing(0, 2), "depends"),            # sync-only: hops under ASGI only
        (_timing(0, 0), "confirmed"),
        (_timing(0, 2, present=0.0), "refuted"),
        (_timing(1, 2), "depends"),
    ],
}


def test_section_5_rules() -> None:
    check_examples(EXAMPLES)
