"""Section 1's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

from claim_examples import Examples, check_examples

NB = "01_asgi_vs_wsgi"


def _rps(sync_uvicorn: float, async_uvicorn: float, wsgi: float = 1000.0) -> dict:
    return {NB: {"rps": {"sync view": {"gunicorn-sync": wsgi, "uvicorn": sync_uvicorn},
                         "async view": {"gunicorn-sync": wsgi, "uvicorn": async_uvicorn}}}}


def _overhead(low: float, busy: float) -> dict:
    return {NB: {"p50 overhead ms": {"at a common rate": low, "at saturation": busy}}}


def _waiting(sync: float, asgi: float) -> dict:
    return {NB: {"waiting": {"wait ms": 20, "clients": 10, "rps": {"gunicorn-sync": sync, "uvicorn": asgi}}}}


EXAMPLES: Examples = {
    "asgi-3000-wsgi-1500": [
        (_rps(2000, 2100), "confirmed"),     # the guide's 2x
        (_rps(200, 300), "refuted"),         # what Django 6.1 measures for sync views
        (_rps(200, 1600), "depends"),        # faster for async views only
    ],
    "asgi-15ms-overhead": [
        (_overhead(15, 40), "confirmed"),
        (_overhead(0.9, 20), "depends"),
        (_overhead(0.9, 4), "refuted"),
    ],
    "asgi-concurrent-nonblocking": [
        (_waiting(48, 400), "confirmed"),
        (_waiting(48, 60), "refuted"),       # uvicorn no better than one at a time
        (_waiting(200, 800), "refuted"),     # the sync worker was not one at a time
    ],
}


def test_section_1_rules() -> None:
    check_examples(EXAMPLES)
