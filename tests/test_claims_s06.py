"""Section 6's rules on synthetic records (see claim_examples.py)."""

from __future__ import annotations

from claim_examples import Examples, check_examples

NB = "06_ninja_vs_drf"


def _race(small: dict, large: dict, ninja_us: float = 11.0, drf_us: float = 12.0,
          spread: float = 0.05) -> dict:
    """``small``/``large``: req/s by framework at 1 and 1000 items; every repeat within
    ``spread`` of the median."""
    rps = {"1 items": small, "100 items": {"raw": 500, "ninja": 300, "drf": 280}, "1000 items": large}
    return {NB: {
        "rps": rps,
        "rps spread": {size: {fw: [v * (1 - spread), v * (1 + spread)] for fw, v in by.items()}
                       for size, by in rps.items()},
        "serialization us per item": {"1000 items": {"ninja": ninja_us, "drf": drf_us}},
    }}


def _rps(raw: float, ninja: float, drf: float) -> dict:
    return {"raw": raw, "ninja": ninja, "drf": drf}


def _sizes(*triples: tuple[float, float, float]) -> dict:
    return {NB: {"rps": {f"{n} items": _rps(*t) for n, t in zip((1, 100, 1000), triples)}}}


GUIDE = (6000, 4000, 1500)

EXAMPLES: Examples = {
    "ninja-faster-than-drf": [
        (_race(_rps(2000, 1500, 1000), _rps(100, 60, 30), 4, 12), "confirmed"),   # 1.5x and 2x
        (_race(_rps(2000, 1500, 1000), _rps(100, 40, 38)), "depends"),            # 1.5x, then 1.05x
        (_race(_rps(2000, 1050, 1000), _rps(100, 40, 38)), "refuted"),            # 1.05x at both
        (_race(_rps(2000, 900, 1000), _rps(100, 30, 40)), "refuted"),             # slower
        (_race(_rps(2000, 1000, 1000), _rps(100, 50, 30)), "depends"),            # large only
        (_race(_rps(2000, 1500, 1000), _rps(100, 60, 30), spread=0.4), "refuted"),  # within the spread
        (_race(_rps(2000, 1300, 1000), _rps(100, 40, 38)), "depends"),            # 1.3x, ranges apart
    ],
    "framework-numbers": [
        (_sizes(GUIDE, (600, 400, 150), (60, 40, 15)), "confirmed"),           # the same proportions
        (_sizes((1500, 1300, 900), (500, 300, 280), (90, 35, 33)), "refuted"),  # what this lab sees
        (_sizes((1500, 1300, 900), (600, 400, 150), (90, 35, 33)), "depends"),  # at 100 items only
        (_sizes((6000, 4000, 4000), GUIDE, GUIDE), "depends"),                  # DRF as fast at 1 item
    ],
}


def test_section_6_rules() -> None:
    check_examples(EXAMPLES)
