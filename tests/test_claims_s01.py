"""Section 1's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

from claim_examples import Examples, check_examples

NB = "01_asgi_vs_wsgi"


def _rps(sync_uvicorn: float, async_uvicorn: float, wsgi: float = 1000.0, wsgi_async: float = 1000.0) -> dict:
    return {NB: {"rps": {"sync view": {"gunicorn-sync": wsgi, "uvicorn": sync_uvicorn},
                         "async view": {"gunicorn-sync": wsgi_async, "uvicorn": async_uvicorn}}}}


def _overhead(low: float, busy: float, rate: float = 70.0, own: float | None = None) -> dict:
    over = {"at a common rate": low, "at saturation": busy}
    if own is not None:
        over["uvicorn at the common rate"] = own
    return {NB: {"p50 overhead ms": over,
                 "cpu ms per request": {"rate": rate, "gunicorn-sync": 1.0, "uvicorn": 3.5}}}


def _waiting(sync: float, asgi: float, wait_ms: int = 100) -> dict:
    return {NB: {"waiting": {"wait ms": wait_ms, "clients": 10,
                             "rps": {"gunicorn-sync": sync, "uvicorn": asgi}}}}


EXAMPLES: Examples = {
    "asgi-3000-wsgi-1500": [
        (_rps(2000, 2100), "confirmed"),     # the guide's 2x
        (_rps(300, 600, 500, 450), "refuted"),   # what Django 6.1 measures: ASGI slower for both views
        (_rps(1400, 1400), "refuted"),       # faster, but not 1.5x, for either view
        (_rps(300, 1600, 500, 1000), "depends"),  # 1.6x faster for async def views only
        (_rps(1600, 1000), "depends"),       # 1.6x for def views only
    ],
    "asgi-15ms-overhead": [
        (_overhead(15, 40), "confirmed"),
        (_overhead(0.9, 20), "depends"),
        (_overhead(0.9, 4), "refuted"),
        (_overhead(103, 20, rate=270), "not measured"),   # 3.5 ms x 270/s: 95% of the core, it queued
        (_overhead(12, 40, rate=30, own=14), "confirmed"),    # 14 ms < 33 ms between arrivals: held
        (_overhead(202, 21, own=204), "not measured"),   # a stall: p50 204 ms at 70/s (14 ms apart)
        (_overhead(4.3, 47, own=7.5), "depends"),        # what one core measures here
    ],
    "asgi-concurrent-nonblocking": [
        (_waiting(9.6, 80), "confirmed"),
        (_waiting(48, 400, wait_ms=20), "confirmed"),
        (_waiting(9.6, 20), "refuted"),      # uvicorn no better than about twice one at a time
        (_waiting(40, 160), "refuted"),      # the sync worker was not one at a time
    ],
}


def test_section_1_rules() -> None:
    check_examples(EXAMPLES)
