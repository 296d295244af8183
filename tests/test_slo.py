"""The measuring logic without a server (``lessons.measure``): the p99's bounds from
order statistics, the grid, the searches' logic on a fake probe, how steps' ranges
become changes, the run spec and the validity rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lessons.measure import bounds, grid, waterfall
from lessons.measure.grid import Capacity, Probe
from lessons.measure.waterfall import Step, StepResult
from lessons.profile import Profile


def test_bounds_need_299_samples_for_an_upper_bound():
    x = np.arange(1, 299)  # 298 samples: even all under a limit cannot show the p99 under it
    assert bounds.quantile_bounds(x)[2] == math.inf
    low, p99, high = bounds.quantile_bounds(np.arange(1, 301))
    assert (p99, high) == (297, 300)  # with 300, the upper bound is the slowest request
    low, p99, high = bounds.quantile_bounds(np.arange(1, 1001))
    assert low < p99 < high < 1000 and (low, p99, high) == (985, 990, 996)


def test_bounds_cover_the_true_p99_as_promised():
    rng = np.random.default_rng(7)
    true = -math.log(0.01)  # p99 of an exponential(1)
    above = below = 0
    for _ in range(400):
        low, _, high = bounds.quantile_bounds(rng.exponential(size=600))
        above += low > true
        below += high < true
    assert above / 400 < 0.09 and below / 400 < 0.09  # each bound fails about 5% of the time


def test_grid():
    assert [round(grid.grid_rate(k)) for k in range(-6, 1)] == [25, 31, 40, 50, 63, 79, 100]
    assert grid.grid_index(100) == 0 and grid.grid_index(26) == -6 and grid.grid_index(1000) == 10


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
    monkeypatch.setattr(grid, "probe", probe)
    settled = []
    cap = grid.search("http://x", start=start, samples=300, settle=lambda: settled.append(1))
    assert (round(cap.low), round(cap.high)) == expected
    assert calls == probes
    assert len(settled) == sum(1 for r in probes if r >= capacity)  # after each probe that did not pass


def test_search_stops_at_the_top(monkeypatch):
    probe, calls = fake(10**9)
    monkeypatch.setattr(grid, "probe", probe)
    cap = grid.search("http://x", start=5000, samples=300, highest=6400)
    assert cap.high is None and round(cap.low) == 6400


def result(low: float, high: float, rps: tuple = (100.0,)) -> StepResult:
    return StepResult(Step("s", Profile(), "/"), [Capacity(low, high, [])], list(rps))


def test_changes_need_ranges_apart():
    assert waterfall._change(result(50, 63), result(25, 31)) == "up"
    assert waterfall._change(result(31, 40), result(31, 40)) == "none"
    assert waterfall._change(result(40, 50), result(31, 40)) == "up"      # touching: [31, 40) then [40, 50)
    assert waterfall._change(result(0, 25), result(40, 50)) == "down"
    two = StepResult(Step("s", Profile(), "/"), [Capacity(31, 40, []), Capacity(50, 63, [])], [1.0, 2.0])
    assert (two.low, two.high, two.capacity, two.rps) == (31, 63, 31, 1.5)
    assert waterfall._change(two, result(40, 50)) == "none"


def test_throughput_changes_need_ranges_apart_and_ten_percent():
    before = result(0, 25, (100, 104, 98))
    assert waterfall._throughput_change(result(0, 25, (120, 125, 118)), before) == "up"
    assert waterfall._throughput_change(result(0, 25, (106, 107, 105)), before) == "none"   # apart, under 10%
    assert waterfall._throughput_change(result(0, 25, (150, 99, 160)), before) == "none"    # ranges overlap
    assert waterfall._throughput_change(result(0, 25, (20, 21, 22)), before) == "down"
    assert waterfall._throughput_change(result(0, 25, (120, 125, 118)), before, gap=1.3) == "none"  # a noisy machine


def test_throughput_noise_is_pooled_over_steps():
    steps = [result(0, 25, rps) for rps in ((100, 120), (50, 55), (200, 200), (10, 20))]
    assert waterfall.throughput_noise(steps) == pytest.approx((20 / 110 + 5 / 52.5) / 2)  # the median of 4
    assert waterfall.throughput_noise([result(0, 25, (100,))]) == 0.0


def test_differences():
    a = Step("a", Profile(), "/x")
    assert waterfall.differences(a, Step("b", Profile(middleware="none"), "/x")) == ["middleware: 'default' -> 'none'"]
    assert waterfall.differences(a, Step("b", Profile(), "/y")) == ["path: /x -> /y"]
    assert waterfall.differences(a, Step("b", Profile(), "/x")) == []


# -- the SLO capacity search (find_slo_capacity) on a fake load ------------------------

def fake_run(capacity: float):
    """``run`` for a server that holds p99 5 ms below ``capacity`` req/s, 50 ms above."""
    from lessons.measure.result import Run

    calls = []

    def run(url, *, rate, duration, label, **kwargs):
        calls.append(round(rate))
        ms = 5.0 if rate < capacity else 50.0
        return Run("open", 1, rate, duration, 100, rate, ms, ms, ms, ms, ms, 0, 0, 0, 0, 10.0,
                   0.1, 0, label=label, samples_ms=np.full(100, ms))

    return run, calls


@pytest.mark.parametrize(("low", "expected"), [
    (100, [100, 200, 400, 800, 566, 673, 734]),   # ramp, then bisect
    (2000, [2000, 1000, 500, 707, 595, 648]),     # halve down from a failing low, bisect
])
def test_capacity_search_ramps_halves_and_bisects(monkeypatch, low, expected):
    from lessons.measure import capacity

    run, calls = fake_run(700)
    monkeypatch.setattr(capacity, "run", run)
    cap = capacity.find_slo_capacity("http://x", low=low, floor=50, progress=False, save=False)
    assert calls == expected
    assert cap.rate == max(r.rate for r, ok in zip(cap.probes, cap.passed) if ok)
    assert 600 < cap.rate < 700 and cap.warnings == []


def test_capacity_search_says_when_it_stopped_early_or_never_passed(monkeypatch):
    from lessons.measure import capacity

    run, calls = fake_run(700)
    monkeypatch.setattr(capacity, "run", run)
    cap = capacity.find_slo_capacity("http://x", low=100, max_steps=5, progress=False)
    assert calls == [100, 200, 400, 800, 566]
    assert cap.warnings == ["The search stopped after 5 probes: the capacity is between 566 "
                            "and 800 req/s."]
    run, calls = fake_run(10)
    monkeypatch.setattr(capacity, "run", run)
    cap = capacity.find_slo_capacity("http://x", low=100, floor=30, progress=False)
    assert calls == [100, 50] and cap.rate == 0
    assert cap.warnings == ["The SLO failed even at the lowest rate probed, 50 req/s."]
    with pytest.raises(ValueError, match="quantile is between 0 and 1"):
        capacity.find_slo_capacity("http://x", quantile=99)


# -- the run spec and the validity rules -------------------------------------------------

def test_the_spec_travels_to_the_load_process_unchanged():
    from lessons.measure.spec import LoadSpec

    spec = LoadSpec.parse("http://u@localhost:8123/a?b=1", connections=2, rate=50, duration=1,
                          warmup=0, timeout=1, paths=None, headers={"X-A": "1"}, processes=1,
                          max_connections=4, arrival="poisson")
    assert (spec.host, spec.port, spec.mode, spec.paths) == ("localhost", 8123, "open", ["/a?b=1"])
    assert spec.requests[0] == ("GET /a?b=1 HTTP/1.1\r\nHost: localhost:8123\r\nX-A: 1\r\n"
                                "User-Agent: lessons-load\r\n\r\n")
    assert LoadSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="a closed loop needs at least one connection per process"):
        LoadSpec.parse("http://x/", connections=1, rate=None, duration=1, warmup=0, timeout=1,
                       paths=None, headers=None, processes=2, max_connections=4, arrival="uniform")


def facts(**changes):
    import types

    from lessons.measure.spec import LoadSpec
    from lessons.measure.validity import Facts

    spec = LoadSpec("h", 80, ("GET / HTTP/1.1\r\n\r\n",), "open", 1, 100.0, 1.0, 0.0, 1.0, 8,
                    "uniform")
    counts = dict(ok=100, non_2xx=0, connect_errors=0, resets=0, timeouts=0, dropped=0,
                  late=0, scheduled=100, peak_connections=1)
    counts.update(changes.pop("counts", {}))
    plan = types.SimpleNamespace(client=[1], server=[0], note="client on CPU 1")
    base = dict(spec=spec, counts=counts, cpu=20.0, cpu_each=[20.0], lag_p99=0.1, processes=1,
                plan=plan, pinned=True, own=20.0, busy={0: 90.0, 1: 25.0})
    base.update(changes)
    return Facts(**base)


def test_a_clean_run_has_no_warning_and_no_flag():
    assert validity_check(facts()) == ([], {"client_saturated": False, "send_lag_high": False,
                                            "not_pinned": False, "machine_busy": False})


@pytest.mark.parametrize(("changes", "rule", "flag", "words"), [
    ({"counts": {"ok": 0}}, "no_request", None, "No request finished"),
    ({"cpu": 90.0, "cpu_each": [90.0]}, "client_saturated", "client_saturated", "used 90% of a core"),
    ({"lag_p99": 3.0}, "send_lag_high", "send_lag_high", "p99 send lag 3.00 ms"),
    ({"counts": {"dropped": 2}}, "dropped", None, "2 requests were dropped"),
    ({"counts": {"timeouts": 3}}, "timeouts", None, "3 requests timed out after 1 s"),
    ({"counts": {"connect_errors": 4}}, "connect_errors", None, "no connection could be opened"),
    ({"counts": {"resets": 5}}, "resets", None, "5 requests failed on an open connection"),
    ({"counts": {"non_2xx": 6}}, "non_2xx", None, "6 responses had a non-2xx status"),
    ({"counts": {"ok": 50}}, "under_served", None, "answered 50 req/s of the 100 req/s"),
    ({"processes": 2}, "crowded_client", None, "2 load processes shared 1 client CPU"),
    ({"pinned": False}, "not_pinned", "not_pinned", "not pinned to its own CPU (client on CPU 1)"),
    ({"busy": {0: 10.0, 1: 60.0}}, "machine_busy", "machine_busy", "used about 40% of the load"),
])
def test_each_rule_warns_on_its_own_condition_only(changes, rule, flag, words):
    from lessons.measure import validity

    warnings, flags = validity_check(facts(**changes))
    assert getattr(validity, rule)(facts()) is None
    assert words in getattr(validity, rule)(facts(**changes))
    assert any(words in w for w in warnings)
    assert {k for k, v in flags.items() if v} == ({flag} if flag else set())


def validity_check(f):
    from lessons.measure.validity import check

    return check(f)
