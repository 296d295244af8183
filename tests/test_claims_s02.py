"""Section 2's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

from claim_examples import Examples, check_examples

from lessons.claims import CLAIMS, Records, evaluate

NB = "02_production_server"


def _workers(sync: dict[int, float], asyncio_: dict[int, float], formula: int = 3, busy: float = 1.0) -> dict:
    """``asyncio_``: req/s by processes; its requests per CPU-second are taken as the same
    numbers (a core of its own), and ``busy`` is how busy the core was with one process."""
    per_cpu = {str(w): v for w, v in asyncio_.items()}
    gain = asyncio_[formula] / asyncio_[1] / busy
    return {NB: {"sync sweep rps": {str(w): v for w, v in sync.items()},
                 "sync sweep": {"formula": formula, "view wait ms": 5},
                 "async sweep rps": {str(w): v for w, v in asyncio_.items()},
                 "async sweep": {"per cpu-second": per_cpu, "one process core busy": busy,
                                 "dedicated-core gain": gain}}}


RISING = {1: 110, 2: 150, 3: 290, 4: 340, 6: 430, 8: 510, 10: 690, 12: 680}   # peak past the formula
PEAK_AT_3 = {1: 150, 2: 290, 3: 420, 4: 430, 5: 425}                         # the formula fits
FLAT = {1: 300, 3: 290}                                                        # 3 processes = 1
WORSE = {1: 300, 3: 240}                                                       # 3 processes hurt
NEEDED = {1: 150, 3: 400}                # one process could not keep its core busy: 3 serve 2.7x


def _class(deprecation: str, ratio: float) -> dict:
    return {NB: {"worker class": {"deprecation": deprecation, "rps ratio": ratio}}}


DEPRECATED = ("The `uvicorn.workers` module is deprecated. Please use `uvicorn-worker` package instead.\n"
              "For more details, see https://github.com/Kludex/uvicorn-worker.")


def _recycling(restarts: int, ratio: float, worst: float, none: float = 150.0) -> dict:
    return {NB: {"recycling": {"max requests": 1000, "jitter": 50, "restarts": restarts, "requests": 1500,
                               "rps ratio": ratio, "max ms": {"recycling": worst, "none": none}}}}


def _timeouts(awaiting: int | None, uvicorn_idle: float | None) -> dict:
    probe = {"sync": {"status": 500, "seconds": 2.5}, "gthread": {"status": 200, "seconds": 4.0},
             "uvicorn_worker awaiting": {"status": awaiting, "seconds": 4.0 if awaiting == 200 else 2.4},
             "uvicorn_worker blocking": {"status": None, "seconds": 2.4}}
    return {NB: {"timeout": {"timeout s": 2, "request ms": 4000, "probes": probe},
                 "keep-alive": {"setting s": 2, "idle lifetime s": {
                     "gunicorn sync": 0.0, "gunicorn gthread": 2.0, "uvicorn_worker": uvicorn_idle}}}}


EXAMPLES: Examples = {
    "workers-formula": [
        (_workers(PEAK_AT_3, NEEDED), "confirmed"),
        (_workers(RISING, FLAT), "refuted"),      # what one core measures here
        (_workers(RISING, WORSE), "refuted"),
        (_workers(PEAK_AT_3, FLAT), "depends"),   # fits sync workers only
        (_workers(RISING, NEEDED), "depends"),    # fits asyncio workers only
        (_workers(RISING, FLAT, busy=0.6), "depends"),   # one process left 40% of its core idle
    ],
    "uvicorn-workers-class": [
        (_class("", 0.98), "confirmed"),
        (_class(DEPRECATED, 1.02), "refuted"),    # what uvicorn 0.54 does
        (_class("", 0.5), "refuted"),
    ],
    "max-requests-jitter": [
        (_recycling(1, 0.97, 200), "confirmed"),
        (_recycling(1, 0.72, 1900), "refuted"),   # one worker, a fast view: boots cost a third
        (_recycling(2, 0.95, 1200), "depends"),
        (_recycling(0, 1.0, 150), "not measured"),
    ],
    "timeout-keepalive": [
        (_timeouts(504, 2.0), "confirmed"),
        (_timeouts(200, None), "refuted"),
        (_timeouts(200, 2.0), "depends"),         # what uvicorn_worker does
        (_timeouts(504, 9.0), "depends"),
    ],
}


def test_section_2_rules() -> None:
    check_examples(EXAMPLES)


def test_keepalive_none_is_said_in_words() -> None:
    """A connection still open at the end of the probe is recorded as None: the evidence
    says so instead of failing to format it."""
    got = evaluate(CLAIMS["timeout-keepalive"], Records(_timeouts(200, None)))
    assert "still open at the end of the probe (uvicorn_worker)" in got.evidence


def test_formula_missing_from_the_sweep_is_not_measured() -> None:
    records = _workers({1: 100, 2: 200}, FLAT)
    assert evaluate(CLAIMS["workers-formula"], Records(records)).verdict == "not measured"


def test_formula_evidence_names_the_server_cores() -> None:
    """The evidence says how many cores the server had (from the record, else from the formula)."""
    one = evaluate(CLAIMS["workers-formula"], Records(_workers(RISING, FLAT)))
    assert one.evidence.startswith("on 1 server core, ")
    records = _workers({1: 100, 5: 400, 6: 410}, {1: 300, 5: 290}, formula=5)
    records[NB]["sync sweep"]["cores"] = 2
    two = evaluate(CLAIMS["workers-formula"], Records(records))
    assert "on 2 server cores, " in two.evidence
