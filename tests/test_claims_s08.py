"""Section 8's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

import copy
from typing import Any

from claim_examples import Examples, check_examples

NB = "08_db_connections"
W, A = "gunicorn-sync", "uvicorn"
CMA0, CMA60, HC, POOL, DJ = ("CONN_MAX_AGE=0", "CONN_MAX_AGE=60", "CONN_MAX_AGE=60 + health checks",
                             "pool", "dj-db-conn-pool")

# What Django 6.1 measures here: persistent connections help under WSGI and leak under
# ASGI; health checks save the request after a restart for ~0.1 ms; the package pools.
MEASURED: dict[str, Any] = {
    "new connection ms": 9.0,
    "query on open connection ms": 0.09,
    "processes": {W: 1, A: 1},
    "policy rps": {W: {CMA0: 130, CMA60: 600, HC: 560, POOL: 510, DJ: 500},
                   A: {CMA0: 140, CMA60: 140, POOL: 310, DJ: 320}},
    "one at a time ms": {W: {CMA0: 13.3, CMA60: 4.4, HC: 4.5, POOL: 5.2, DJ: 4.0},
                         A: {CMA0: 9.8, CMA60: 8.9, POOL: 3.0, DJ: 4.0}},
    "requests one at a time": 30,
    "connections opened": {W: {CMA0: 30, CMA60: 1, HC: 1, POOL: 4, DJ: 1},
                           A: {CMA0: 30, CMA60: 30, POOL: 4, DJ: 1}},
    "connections held": {W: {CMA0: {"20": 0, "40": 0, "640": 0}, CMA60: {"20": 1, "40": 1, "640": 1},
                             HC: {"20": 1, "40": 1, "600": 1}, POOL: {"20": 4, "40": 4, "550": 4},
                             DJ: {"20": 1, "40": 1, "540": 1}},
                         A: {CMA0: {"20": 0, "40": 0, "180": 0}, CMA60: {"20": 5, "40": 8, "180": 113},
                             POOL: {"20": 4, "40": 4, "350": 4}, DJ: {"20": 1, "40": 1, "360": 10}}},
    "after a restart": {"requests": 6, "failed": {W: {CMA0: 0, CMA60: 1, HC: 0, POOL: 4, DJ: 0},
                                                  A: {CMA0: 0, CMA60: 0, POOL: 4, DJ: 0}}},
    "statement timeout": {"limit ms": 500, "query ms": 2000, "status": 504, "elapsed ms": 560,
                          "next status": 200},
    "guide's pool": {"raised": None, "message": ""},
}


def with_(mutate) -> dict:
    m = copy.deepcopy(MEASURED)
    mutate(m)
    return {NB: m}


def _seq(m: dict, server: str, policy: str, ms: float) -> None:
    m["one at a time ms"][server][policy] = ms


def _held(m: dict, server: str, policy: str, n: int) -> None:
    m["connections held"][server][policy] = {"20": n, "40": n, "500": n}


def _opened(m: dict, server: str, policy: str, n: int) -> None:
    m["connections opened"][server][policy] = n


def _rps(m: dict, server: str, policy: str, value: float) -> None:
    m["policy rps"][server][policy] = value


def _failed(m: dict, policy: str, n: int) -> None:
    m["after a restart"]["failed"][W][policy] = n


def _timeout(m: dict, **values: Any) -> None:
    m["statement timeout"].update(values)


EXAMPLES: Examples = {
    "conn-max-age": [
        (with_(lambda m: None), "depends"),                        # WSGI yes, ASGI leaks
        (with_(lambda m: (_seq(m, A, CMA60, 3.0), _held(m, A, CMA60, 1), _opened(m, A, CMA60, 1))),
         "confirmed"),
        (with_(lambda m: _opened(m, W, CMA60, 30)), "refuted"),    # no reuse under WSGI either
        (with_(lambda m: _seq(m, W, CMA60, 14.0)), "refuted"),     # reused, yet no faster
        (with_(lambda m: _held(m, W, CMA60, 3)), "refuted"),       # WSGI holds more than 1 per process
    ],
    "conn-health-checks": [
        (with_(lambda m: None), "confirmed"),
        (with_(lambda m: _seq(m, W, HC, 6.0)), "confirmed"),       # a request's median is quoted only
        (with_(lambda m: m.update({"query on open connection ms": 1.6})), "depends"),  # a slow SELECT 1
        (with_(lambda m: _failed(m, HC, 1)), "refuted"),           # did not save it
        (with_(lambda m: _failed(m, CMA60, 0)), "refuted"),        # nothing to save
    ],
    "statement-timeout": [
        (with_(lambda m: None), "confirmed"),
        (with_(lambda m: _timeout(m, status=200, **{"elapsed ms": 2010})), "refuted"),  # ran to the end
        (with_(lambda m: _timeout(m, **{"next status": 503})), "refuted"),
    ],
    "dj-db-conn-pool": [
        (with_(lambda m: None), "confirmed"),
        (with_(lambda m: m.update({"guide's pool": {"raised": "ImportError", "message": "no module"}})),
         "refuted"),
        (with_(lambda m: (_opened(m, W, DJ, 30), _opened(m, A, DJ, 30))), "refuted"),  # reuses nothing
        (with_(lambda m: (_seq(m, W, DJ, 14.0), _seq(m, A, DJ, 10.0))), "refuted"),    # no faster
        (with_(lambda m: (_held(m, W, DJ, 30), _held(m, A, DJ, 30))), "refuted"),    # holds past its size
        (with_(lambda m: _opened(m, A, DJ, 30)), "depends"),       # pools under WSGI only
        (with_(lambda m: _seq(m, W, DJ, 8.5)), "confirmed"),       # saves 4.8 ms, over half of Django's 8.1
        (with_(lambda m: _seq(m, W, DJ, 10.0)), "depends"),        # saves 3.3 ms, under half of 8.1
        (with_(lambda m: (_seq(m, W, DJ, 8.5), _seq(m, W, POOL, 2.0))), "depends"),  # 4.8 < half of 11.3
        (with_(lambda m: (_rps(m, W, DJ, 150), _rps(m, A, DJ, 150))), "confirmed"),  # throughput is quoted only
    ],
}


def test_section_8_rules() -> None:
    check_examples(EXAMPLES)


def test_evidence_is_one_sentence_of_numbers() -> None:
    from lessons.claims import CLAIMS, Records, evaluate

    got = evaluate(CLAIMS["dj-db-conn-pool"], Records({NB: MEASURED}))
    assert "500 req/s" in got.evidence and "Django's pool 510" in got.evidence
    assert ("gunicorn sync (WSGI): 1 connection opened for 30 requests one at a time, 4.0 ms each "
            "(CONN_MAX_AGE=0 13.3 ms, Django's pool 5.2 ms), 500 req/s") in got.evidence
    got = evaluate(CLAIMS["conn-health-checks"], Records({NB: MEASURED}))
    assert "the check is one SELECT 1, 0.09 ms on an open connection here" in got.evidence
    got = evaluate(CLAIMS["conn-max-age"], Records({NB: MEASURED}))
    assert got.evidence.startswith(
        "under gunicorn sync (WSGI) only; under uvicorn (ASGI) it opened 30 connections for 30 "
        "requests one at a time and it holds 113 connections for 1 process: a new connection costs 9.0 ms")
    assert "113 connections held after 180 requests (1 process)" in got.evidence
