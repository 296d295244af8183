"""lessons.slo without a server: the p99's bounds from order statistics, the grid, the
search's logic on a fake probe, and how steps' ranges become changes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lessons import slo
from lessons.profile import Profile
from lessons.slo import Capacity, Probe, Step, StepResult


def test_bounds_need_299_samples_for_an_upper_bound():
    x = np.arange(1, 299)  # 298 samples: even all under a limit cannot show the p99 under it
    assert slo.quantile_bounds(x)[2] == math.inf
    low, p99, high = slo.quantile_bounds(np.arange(1, 301))
    assert (p99, high) == (297, 300)  # with 300, the upper bound is the slowest request
    low, p99, high = slo.quantile_bounds(np.arange(1, 1001))
    assert low < p99 < high < 1000 and (low, p99, high) == (985, 990, 996)


def test_bounds_cover_the_true_p99_as_promised():
    rng = np.random.default_rng(7)
    true = -math.log(0.01)  # p99 of an exponential(1)
    above = below = 0
    for _ in range(400):
        low, _, high = slo.quantile_bounds(rng.exponential(size=600))
        above += low > true
        below += high < true
    assert above / 400 < 0.09 and below / 400 < 0.09  # each bound fails about 5% of the time


def test_grid():
    assert [round(slo.grid_rate(k)) for k in range(-6, 1)] == [25, 31, 40, 50, 63, 79, 100]
    assert slo.grid_index(100) == 0 and slo.grid_index(26) == -6 and slo.grid_index(1000) == 10


def fake(capacity: float):
    """A probe that passes below ``capacity`` and fails at or above it."""
    calls = []

    def probe(url, rate, **kwargs):
        calls.append(round(rate))
        ok = rate < capacity
        return Probe(rate, 300, 1.0, 5.0 if ok else 50.0, 4.0, 9.0 if ok else 80.0, 0,
                     "pass" if ok else "fail", 0.0)

    return probe, calls


@pytest.mark.parametrize(("capacity", "start", "expected", "probes"), [
    (45, 25, (40, 50), [25, 31, 40, 50]),     # up from the bottom
    (45, 100, (40, 50), [100, 79, 63, 50, 40]),  # down from above
    (45, 40, (40, 50), [40, 50]),             # a repeat starting where the last one ended
    (10, 25, (0, 25), [25]),                  # not even the lowest rate
])
def test_search(monkeypatch, capacity, start, expected, probes):
    probe, calls = fake(capacity)
    monkeypatch.setattr(slo, "probe", probe)
    settled = []
    cap = slo.search("http://x", start=start, samples=300, settle=lambda: settled.append(1))
    assert (round(cap.low), round(cap.high)) == expected
    assert calls == probes
    assert len(settled) == sum(1 for r in probes if r >= capacity)  # after each probe that did not pass


def test_search_stops_at_the_top(monkeypatch):
    probe, calls = fake(10**9)
    monkeypatch.setattr(slo, "probe", probe)
    cap = slo.search("http://x", start=5000, samples=300, highest=6400)
    assert cap.high is None and round(cap.low) == 6400


def result(low: float, high: float, rps: tuple = (100.0,)) -> StepResult:
    return StepResult(Step("s", Profile(), "/"), [Capacity(low, high, [])], list(rps))


def test_changes_need_ranges_apart():
    assert slo._change(result(50, 63), result(25, 31)) == "up"
    assert slo._change(result(31, 40), result(31, 40)) == "none"
    assert slo._change(result(40, 50), result(31, 40)) == "up"      # touching: [31, 40) then [40, 50)
    assert slo._change(result(0, 25), result(40, 50)) == "down"
    two = StepResult(Step("s", Profile(), "/"), [Capacity(31, 40, []), Capacity(50, 63, [])], [1.0, 2.0])
    assert (two.low, two.high, two.capacity, two.rps) == (31, 63, 31, 1.5)
    assert slo._change(two, result(40, 50)) == "none"


def test_throughput_changes_need_ranges_apart_and_ten_percent():
    before = result(0, 25, (100, 104, 98))
    assert slo._throughput_change(result(0, 25, (120, 125, 118)), before) == "up"
    assert slo._throughput_change(result(0, 25, (106, 107, 105)), before) == "none"   # apart, under 10%
    assert slo._throughput_change(result(0, 25, (150, 99, 160)), before) == "none"    # ranges overlap
    assert slo._throughput_change(result(0, 25, (20, 21, 22)), before) == "down"
    assert slo._throughput_change(result(0, 25, (120, 125, 118)), before, gap=1.3) == "none"  # a noisy machine


def test_throughput_noise_is_pooled_over_steps():
    steps = [result(0, 25, rps) for rps in ((100, 120), (50, 55), (200, 200), (10, 20))]
    assert slo.throughput_noise(steps) == pytest.approx((20 / 110 + 5 / 52.5) / 2)  # the median of 4
    assert slo.throughput_noise([result(0, 25, (100,))]) == 0.0


def test_differences():
    a = Step("a", Profile(), "/x")
    assert slo.differences(a, Step("b", Profile(middleware="none"), "/x")) == ["middleware: 'default' -> 'none'"]
    assert slo.differences(a, Step("b", Profile(), "/y")) == ["path: /x -> /y"]
    assert slo.differences(a, Step("b", Profile(), "/x")) == []
