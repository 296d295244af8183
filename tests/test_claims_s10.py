"""Section 10's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

import copy

from claim_examples import Examples, check_examples

NB = "10_profiling"

SHARES = {"serialize": 0.067, "json.loads": 0.004, "related-object fetch": 0.87,
          "silk: EXPLAIN": 0.10, "silk: stack traces": 0.19}
BASE = {
    "queries": {"slow-orders": 51, "fast-orders": 1, "limit": 50},
    "silk": {"sent": 3, "recorded": 3, "hello recorded": 0, "queries": [51, 51, 51],
             "repeated statement": [50, 50, 50], "explained": [51, 51, 51],
             "shares": SHARES, "dashboard status": 200},
    "pyinstrument shares": {**SHARES, "serialize": 0.15, "silk: EXPLAIN": None,
                            "silk: stack traces": None},
    "toolbar": {"server-timing queries": 51, "similar": 50, "body untouched": True},
    "cost": {"no profiler": {"p50_ms": 4.0, "p99_ms": 9.0, "runs": 3},
             "silk": {"p50_ms": 60.0, "p99_ms": 90.0, "runs": 3},
             "pyinstrument": {"p50_ms": 9.0, "p99_ms": 20.0, "runs": 3},
             "DEBUG=True": {"p50_ms": 4.2, "p99_ms": 9.0, "runs": 3},
             "debug toolbar": {"p50_ms": 33.0, "p99_ms": 60.0, "runs": 3}},
}


def _records(**changes: object) -> dict:
    """BASE with some values replaced: "silk__shares" is BASE["silk"]["shares"]."""
    m = copy.deepcopy(BASE)
    for key, value in changes.items():
        *outer, inner = key.split("__")
        target = m
        for part in outer:
            target = target[part]
        target[inner] = value
    return {NB: m}


EXAMPLES: Examples = {
    "django-silk": [
        (_records(), "confirmed"),                                     # what silk 5.6 shows
        (_records(silk__shares={**SHARES, "serialize": None}), "depends"),   # no cProfile text
        (_records(silk__shares={**SHARES, "serialize": 0.01}), "depends"),   # named, but small
        (_records(**{"silk__dashboard status": 404}), "depends"),      # /silk/ did not answer
        (_records(silk__queries=[51, 0, 51]), "depends"),               # a request without SQL
        (_records(silk__recorded=2), "depends"),                        # one request missing
        (_records(silk__queries=[0, 0, 0], silk__recorded=0,
                  silk__shares={**SHARES, "serialize": None}), "refuted"),
    ],
    "debug-toolbar": [
        (_records(), "confirmed"),
        (_records(**{"toolbar__server-timing queries": 0}), "refuted"),  # the toolbar saw nothing
        (_records(cost={**BASE["cost"], "debug toolbar": {"p50_ms": 5.0, "p99_ms": 10.0, "runs": 3}}),
         "depends"),                                                   # finds them, costs 1.25x
    ],
}


def test_section_10_rules() -> None:
    check_examples(EXAMPLES)
