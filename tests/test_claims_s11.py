"""Section 11's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

from claim_examples import Examples, check_examples

NB = "11_quick_reference"


def _milestone(low: float, high: float, rps: float, spread: float = 0.05) -> dict:
    return {"low": low, "high": high, "median": low, "throughput": rps,
            "throughput min": rps * (1 - spread), "throughput max": rps * (1 + spread)}


def _waterfall(start: dict, done: dict, *, lowered: str = "") -> dict:
    def step(name: str, checklist: bool, change: str, thr: str) -> dict:
        return {"step": name, "checklist": checklist, "measured": True, "change": change,
                "throughput change": thr}

    steps = [step("start", False, "start", "start"),
             step("Use ASGI", True, "down" if lowered == "slo" else "none",
                  "down" if lowered == "throughput" else "none"),
             step("Enable Redis caching", True, "up", "up"),
             {**step("Use iterator()", True, "not re-measured", "not re-measured"), "measured": False}]
    return {NB: {"waterfall": steps, "slo ms": 10,
                 "milestones": {"start": start, "silk left on": _milestone(0, 25, 20), "checklist": done,
                                "tuned": _milestone(40, 50, 400)}}}


SLOW = _milestone(0, 25, 80)           # no rate held the SLO
HOLDS = _milestone(32, 40, 300)         # the SLO held up to 32 req/s
def _budget(stages: dict, total: float, interval: tuple, *, spread: float = 1.1) -> dict:
    guide = {"middleware": 1, "auth check": 1, "ORM query": 4, "serialization": 2, "response": 2}
    return {NB: {"budget": {
        "rate": 200, "samples": 2000, "guide ms": guide, "p99 ms": stages,
        "p99 high ms": {k: v * spread for k, v in stages.items()},
        "total p99 ms": total, "total p99 interval ms": list(interval)}}}


FITS = {"request in": 0.8, "middleware": 0.1, "routing": 0.1, "auth check": 0.6, "ORM query": 1.2,
        "serialization": 0.05, "response": 0.4}
AUTH_OVER = {**FITS, "auth check": 1.6}


def _bench(wsgi: float, asgi_def: float, asgi_async: float, raw: float, ninja: float, drf: float,
           key: str = "100 items") -> dict:
    return {
        "01_asgi_vs_wsgi": {"rps": {"sync view": {"gunicorn-sync": wsgi, "uvicorn": asgi_def},
                                    "async view": {"gunicorn-sync": wsgi * 0.6, "uvicorn": asgi_async}}},
        "06_ninja_vs_drf": {"rps": {"1 items": {"raw": 1, "ninja": 1, "drf": 1},
                                    key: {"Raw": raw, "Ninja": ninja, "DRF": drf, "raw-orjson": 9e9}}},
    }


EXAMPLES: Examples = {
    "checklist": [
        (_waterfall(SLOW, HOLDS), "confirmed"),                        # decided by the SLO capacity
        (_waterfall(SLOW, HOLDS, lowered="slo"), "depends"),
        (_waterfall(_milestone(32, 40, 300), _milestone(32, 40, 900)), "refuted"),  # capacity unmoved
        (_waterfall(HOLDS, SLOW), "refuted"),                         # lowered overall
        (_waterfall(_milestone(0, 25, 80), _milestone(6400, None, 900)), "confirmed"),  # top of the grid
        # Nothing holds the SLO anywhere (a slow machine): the throughput decides.
        ({NB: {**_waterfall(SLOW, _milestone(0, 25, 200))[NB],
               "milestones": {"start": SLOW, "silk left on": SLOW, "checklist": _milestone(0, 25, 200),
                              "tuned": _milestone(0, 25, 300)}}}, "confirmed"),
        ({NB: {**_waterfall(SLOW, _milestone(0, 25, 200), lowered="throughput")[NB],
               "milestones": {"start": SLOW, "silk left on": SLOW, "checklist": _milestone(0, 25, 200),
                              "tuned": _milestone(0, 25, 300)}}}, "depends"),
        ({NB: {**_waterfall(SLOW, SLOW)[NB],
               "milestones": {"start": SLOW, "silk left on": SLOW, "checklist": _milestone(0, 25, 84),
                              "tuned": _milestone(0, 25, 300)}}}, "refuted"),   # within the spread
    ],
    "latency-budget": [
        (_budget(FITS, 3.1, (2.9, 3.4)), "confirmed"),
        (_budget(AUTH_OVER, 3.9, (3.5, 4.4)), "depends"),    # fits, but auth over its 1 ms
        (_budget(FITS, 9.8, (9.1, 10.6)), "depends"),        # too close to 10 ms to tell
        (_budget(FITS, 14.0, (12.0, 17.0)), "refuted"),
        (_budget(FITS, 9.0, (8.0, None)), "depends"),        # too few requests to bound the p99
        ({NB: {"budget": {**_budget(FITS, 3.1, (2.9, 3.4))[NB]["budget"],
                          "p99 high ms": {**{k: v * 1.1 for k, v in FITS.items()}, "auth check": None}}}},
         "depends"),                                          # auth's p99 unbounded: not shown within its line
    ],
    "benchmark-summary": [
        (_bench(1500, 3000, 3100, 6000, 4000, 1500), "confirmed"),   # the guide's own numbers
        (_bench(2100, 600, 900, 3000, 2000, 900), "depends"),        # order holds, ASGI slower
        (_bench(1000, 1600, 2100, 1000, 1000, 1000), "depends"),     # ASGI faster, no order
        (_bench(2100, 600, 900, 2600, 2500, 2400), "refuted"),
        (_bench(2100, 600, 900, 3000, 2000, 900, key="10 items"), "depends"),  # payload read from its key
        ({"01_asgi_vs_wsgi": {"rps": {"sync view": {"gunicorn-sync": 1, "uvicorn": 1},
                                      "async view": {"uvicorn": 1}}},
          "06_ninja_vs_drf": {"rps": {"100 items": {"raw": 1}}}}, "not measured"),  # 06 lacks drf
    ],
}


def test_section_11_rules() -> None:
    check_examples(EXAMPLES)


def test_checklist_profiling_cost_is_stated_not_counted() -> None:
    """Silk on every request lowers the measure while on; the checklist removes it after
    profiling, so its step alone does not turn a raised measure into "depends"."""
    from lessons.claims import CLAIMS, Records, evaluate

    records = _waterfall(SLOW, HOLDS)
    records[NB]["waterfall"].insert(3, {"step": "Profile with django-silk", "checklist": True, "measured": True,
                                        "change": "down", "throughput change": "down"})
    verdict = evaluate(CLAIMS["checklist"], Records(records))
    assert verdict.verdict == "confirmed"
    assert "while on, Profile with django-silk changed it: down (removed after profiling)" in verdict.evidence

