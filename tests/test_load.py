"""The measuring core: the load generator reports what the stub server was told to do.

Every server here is ``tests/stub_server.py`` with injected, deterministic delays and
failures.  Assertions are about injected delays (with wide tolerances), exact counts,
directions and time *bounds*; never about this machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from helpers import descendants, still_running
from lessons import config
from lessons.measure import capacity, comparison, launch, log, merge
from lessons.measure.result import Run, table
from lessons.measure.spec import LoadSpec
from stub_server import StubServer

# The stub's delays are lower bounds, but the SLO searches and the closed/open-loop
# comparisons read latencies: run where nothing else competes for the cores.
pytestmark = pytest.mark.measures


@pytest.fixture(autouse=True)
def nothing_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs are saved to a throw-away results dir; no process outlives a test."""
    monkeypatch.setenv("LAB_RESULTS", str(tmp_path / "results"))
    before = {p.pid for p in descendants()}
    yield
    left = still_running([p for p in descendants() if p.pid not in before], timeout=5)
    assert not left, [" ".join(p.cmdline())[:100] for p in left]


# --------------------------------------------------------------------------------------
# Latency matches the injected delays
# --------------------------------------------------------------------------------------

def test_closed_and_open_loop_report_the_injected_delays() -> None:
    # Every request 2 ms, every 50th 50 ms: p50 ~ 2 ms, p99 (2% slow) ~ 50 ms.
    with StubServer(delay_ms=2, slow_every=50, slow_ms=50) as stub:
        closed = launch.run(stub.url, connections=4, duration=1.5, warmup=0.3)
        opened = launch.run(stub.url, rate=300, duration=1.5, warmup=0.3)
    for r in (closed, opened):
        assert r.errors == r.non_2xx == r.dropped == 0, r.summary()
        # No request is faster than its injected delay; the 2% slow ones set the p99 and
        # stay out of the p90 (no upper bound in ms: a shared machine adds its own delays).
        assert r.p50_ms >= 2.0 and r.p90_ms < 50.0, r.summary()
        assert r.p99_ms >= 50.0 and r.samples_ms.min() >= 2.0, r.summary()
        assert r.p50_ms <= r.p90_ms <= r.p99_ms <= r.p999_ms <= r.max_ms
        assert len(r.samples_ms) == r.requests
        # percentiles are exact quantiles of the raw samples
        assert r.p99_ms == float(np.quantile(r.samples_ms, 0.99, method="inverted_cdf"))
    assert closed.mode == "closed" and closed.rate is None and closed.send_lag_p99_ms is None
    assert opened.mode == "open" and opened.rate == 300
    assert opened.send_lag_p99_ms is not None and opened.send_lag_p99_ms >= 0
    # open loop: about rate x duration requests, all of them due in the window
    assert opened.requests == opened.meta["scheduled"]
    assert abs(opened.requests - 450) <= 1


def test_coordinated_omission_shows_in_open_loop_only() -> None:
    # The whole server stalls 100 ms once a second.  Open loop: every request due in a
    # stall waits for its end, ~10% of requests, so p99 ~ 90 ms.  Closed loop with one
    # connection: one request per stall among thousands, so p99 stays small.
    with StubServer(stall_ms=100, stall_every_s=1.0) as stub:
        opened = launch.run(stub.url, rate=400, duration=3.0, warmup=0.5)
        closed = launch.run(stub.url, connections=1, duration=3.0, warmup=0.5)
        stalls = stub.stats()["stalls"]
    assert stalls >= 6
    assert opened.errors == opened.dropped == 0, opened.summary()
    assert closed.errors == 0, closed.summary()
    assert opened.p99_ms >= 40.0, opened.summary()
    assert closed.p99_ms < 40.0, closed.summary()
    assert opened.p99_ms >= 5 * closed.p99_ms, (opened.summary(), closed.summary())
    # the closed loop did see the stalls, in its max, but not in its p99
    assert closed.max_ms > 5 * closed.p99_ms


# --------------------------------------------------------------------------------------
# Exact counting
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["closed", "open"])
def test_errors_timeouts_and_non_2xx_are_counted_exactly(mode: str) -> None:
    # No warm-up: every request the stub numbers is a measured one.
    with StubServer(status_every=10, reset_every=23, hang_every=37) as stub:
        kw = {"connections": 4} if mode == "closed" else {"rate": 300.0}
        r = launch.run(stub.url, duration=1.0, warmup=0.0, timeout=0.3, **kw)
        s = stub.stats()
    assert s["requests"] > 100 and s["status"] and s["reset"] and s["hung"], s
    assert r.requests == s["requests"], (r.summary(), s)
    assert r.non_2xx == s["status"], (r.summary(), s)
    assert r.timeouts == s["hung"], (r.summary(), s)
    assert r.resets == s["reset"] and r.connect_errors == 0, (r.summary(), s)
    assert r.errors == r.timeouts + r.resets
    assert r.dropped == 0
    # timeouts are latency samples at the timeout; resets are not samples
    assert len(r.samples_ms) == r.requests - (r.errors - r.timeouts)
    assert int(np.sum(r.samples_ms == 300.0)) == r.timeouts
    assert r.to_json_dict()["errors"] == r.errors  # errors include timeouts


def test_open_loop_counts_dropped_requests_never_silently() -> None:
    # 2 connections, 50 ms per request: 40 req/s served of 200 offered.  Every scheduled
    # request is a response, an error, a timeout or a drop.
    with StubServer(delay_ms=50) as stub:
        r = launch.run(stub.url, rate=200, duration=1.0, warmup=0.0, timeout=0.3,
                       max_connections=2)
    assert r.dropped > 0 and not r.valid
    assert r.requests + r.dropped == r.meta["scheduled"]
    assert abs(r.meta["scheduled"] - 200) <= 1
    assert r.connections <= 2
    assert any("dropped" in w for w in r.warnings)


def test_two_processes_merge_raw_samples() -> None:
    with StubServer(delay_ms=1) as stub:
        r = launch.run(stub.url, connections=4, duration=1.0, warmup=0.0, processes=2)
        s = stub.stats()
    assert r.meta["processes"] == 2
    assert r.requests == s["requests"] == len(r.samples_ms)
    assert r.samples_ms.min() >= 1.0  # every request waited its injected 1 ms


def test_paths_are_cycled_and_headers_sent() -> None:
    with StubServer() as stub:
        r = launch.run(stub.url, connections=3, duration=0.5, warmup=0.0,
                       paths=["/a", "/b?x=1", "/c"], headers={"X-Lab": "yes"})
        s = stub.stats()
    assert set(s["paths"]) == {"/a", "/b?x=1", "/c"}
    counts = sorted(s["paths"].values())
    assert counts[-1] - counts[0] <= 1          # one shared cycle over all connections
    assert s["with_header"] == s["requests"] == r.requests


def test_bad_arguments_fail_before_anything_starts() -> None:
    for kwargs in ({"rate": 0}, {"connections": 0}, {"duration": 0}, {"paths": ["x"]},
                   {"processes": 4, "connections": 2}, {"arrival": "bursty", "rate": 5}):
        with pytest.raises(ValueError):
            launch.run("http://127.0.0.1:1/", **kwargs)
    with pytest.raises(ValueError):
        launch.run("https://example.com/")


def test_merging_never_averages_percentiles() -> None:
    # Two workers: one fast (1 ms x 990), one with a slow tail (100 ms x 10 of 10).
    from lessons import cpus

    fast = np.full(990, 1e-3)
    slow = np.full(10, 0.1)

    def worker(lat: np.ndarray) -> dict:
        return {"lat": lat.tobytes(), "lag": b"", "ok": lat.size, "non_2xx": 0,
                "connect_errors": 0, "resets": 0, "timeouts": 0, "dropped": 0, "late": 0,
                "scheduled": lat.size, "peak_connections": 1, "cpu_window_s": 0.1,
                "wall_window_s": 1.0, "cpu_total_s": 0.2, "pinned": True,
                "loop": "uvloop", "precise_timer": True}

    spec = LoadSpec.parse("http://127.0.0.1:1/", connections=2, rate=None, duration=1.0,
                          warmup=0.0, timeout=1.0, paths=None, headers=None, processes=2,
                          max_connections=8, arrival="uniform")
    r = merge.merge(spec, [worker(fast), worker(slow)], label="", url="", plan=cpus.plan(),
                      cpu_delta={}, elapsed=1.0)
    assert r.requests == 1000
    assert r.p50_ms == pytest.approx(1.0)
    assert r.p99_ms == pytest.approx(1.0)        # 990 of 1000 samples are 1 ms
    assert r.p999_ms == pytest.approx(100.0)
    assert r.max_ms == pytest.approx(100.0)


# --------------------------------------------------------------------------------------
# Bounded in time, whatever the server does
# --------------------------------------------------------------------------------------

def test_a_hanging_server_is_bounded_and_counted() -> None:
    with StubServer(hang_every=1) as stub:
        t0 = time.monotonic()
        r = launch.run(stub.url, connections=2, duration=1.0, warmup=0.2, timeout=0.5)
        elapsed = time.monotonic() - t0
    assert elapsed <= 0.2 + 1.0 + 0.5 + 5.0
    assert r.requests > 0 and r.timeouts == r.errors == r.requests
    assert r.rps == 0 and r.p50_ms == 0.5 * 1e3


def test_a_closed_port_is_bounded_and_counted() -> None:
    with StubServer() as stub:
        url = stub.url
    t0 = time.monotonic()
    r = launch.run(url, rate=100, duration=0.5, warmup=0.0, timeout=0.5)
    elapsed = time.monotonic() - t0
    assert elapsed <= 0.5 + 0.5 + 5.0
    assert r.requests == r.errors == r.connect_errors > 0 and r.timeouts == 0
    assert r.requests + r.dropped == r.meta["scheduled"]
    assert np.isnan(r.p50_ms) and r.rps == 0
    assert any("no connection could be opened" in w for w in r.warnings)


# --------------------------------------------------------------------------------------
# The CLI, comparisons, capacity, the results log
# --------------------------------------------------------------------------------------

def test_cli_bench_json_prints_exactly_the_keys() -> None:
    keys = {"mode", "connections", "rate", "duration_s", "requests", "rps", "p50_ms",
            "p90_ms", "p99_ms", "p999_ms", "max_ms", "errors", "non_2xx", "dropped",
            "client_cpu_pct"}
    with StubServer() as stub:
        out = subprocess.run(
            [sys.executable, "-m", "lessons", "bench", stub.url + "x/y?z=1", "--json",
             "-d", "1", "--warmup", "0.2", "--no-save"],
            cwd=config.REPO, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert set(d) == keys and len(d) == 15
    assert d["mode"] == "closed" and d["rate"] is None and d["requests"] > 0


def test_compare_interleaves_repeats_and_saves_every_run(tmp_path: Path) -> None:
    with StubServer() as fast, StubServer(busy_ms=2) as slow:
        cmp = comparison.compare_urls({"fast": fast.url, "slow": slow.url}, path="/p", repeats=2,
                                 connections=4, duration=0.5, warmup=0.2, progress=False)
    assert [r.label for r in cmp.runs] == ["fast", "slow", "fast", "slow"]
    assert all(r.url.endswith(":%d/p" % (fast.port if r.label == "fast" else slow.port))
               for r in cmp.runs)
    s = cmp.summary
    assert list(s.index) == ["fast", "slow"] and (s["runs"] == 2).all()
    assert s.loc["fast", "rps_ratio"] == 1.0
    # 2 ms of CPU per request caps "slow" at 500 req/s; "fast" is far above
    assert cmp.ratio("rps", "slow", "fast") < 0.5
    assert s.loc["slow", "rps_min"] <= s.loc["slow", "rps"] <= s.loc["slow", "rps_max"]
    assert len(table(cmp.runs)) == 4
    saved = Path(os.environ["LAB_RESULTS"]) / "runs.jsonl"
    recs = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [r["label"] for r in recs] == ["fast", "slow", "fast", "slow"]
    facts = recs[0]["machine"]
    assert facts["cpu_count"] and facts["python"] and "django" in facts["packages"]
    assert recs[0]["pinning"]
    assert len(log.saved()) == 4


def test_a_run_that_finished_nothing_runs_again_and_says_so(capsys) -> None:
    # The stub never answers its first 4 requests: the 4 connections' first requests,
    # sent in the warm-up, hang through the whole window (the timeout is longer), so that
    # run finishes no measured request.
    with StubServer(hang_first=4) as stalled:
        r = launch.run(stalled.url, connections=4, duration=0.3, warmup=0.5, timeout=1.0,
                       label="stalled", progress=True)
        assert stalled.stats()["hung"] == 4
    assert r.requests > 0 and r.rps > 0
    assert r.warnings[0] == launch.RERUN.format(window=0.3) == (
        "A first run finished no request sent in its 0.3 s window (a stall of the server or "
        "the machine, or first answers slower than warm-up and window): this is a second run.")
    assert r.meta["first_run"]["requests"] == r.meta["first_run"]["scheduled"] == 0
    saved = [json.loads(line) for line in
             (Path(os.environ["LAB_RESULTS"]) / "runs.jsonl").read_text().splitlines()]
    assert [(x["label"], x["requests"] > 0) for x in saved[-2:]] == [
        ("stalled", False), ("stalled", True)]
    assert saved[-1]["meta"]["first_run"]["requests"] == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ...")[0] for line in lines] == ["stalled: closed loop 4 conn, 0.5+0.3 s"] * 2


def test_a_server_that_never_answers_is_run_twice_and_says_so() -> None:
    # Every request hangs; the timeout outlasts warm-up and window, so none is counted.
    with StubServer(hang_every=1) as dead:
        cmp = comparison.compare_urls({"dead": dead.url}, path="/p", repeats=1, connections=2,
                                      duration=0.2, warmup=0.5, timeout=1.0, progress=False)
        assert dead.stats()["hung"] == 4   # 2 connections, twice
    (r,) = cmp.runs
    assert r.requests == 0 and cmp.summary.loc["dead", "rps"] == 0 and not r.valid
    assert cmp.warnings[:2] == ["dead: " + launch.RERUN.format(window=0.2),
                                "dead: No request finished: is the server running at that "
                                "address?"]


def test_an_open_loop_run_that_finished_nothing_is_its_result() -> None:
    # One connection, held by the warm-up's first request (never answered), and one
    # waiting place, held by the warm-up's second: every request due in the window is
    # dropped, and an open loop is not run again.
    with StubServer(hang_every=1) as dead:
        r = launch.run(dead.url, rate=50, connections=1, max_connections=1, duration=0.3,
                       warmup=0.2, timeout=1.0)
        assert dead.stats()["hung"] in (1, 2)   # 2 when the second went out after a timeout
    assert r.requests == 0 and r.dropped == r.meta["scheduled"] > 0
    assert "first_run" not in r.meta and not any("second run" in w for w in r.warnings)


def test_saving_never_fails_a_run(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = Run("closed", 1, None, 1.0, 1, 1.0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1.0, None, 0,
            samples_ms=np.array([1.0]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert log.save(r, directory=blocker / "sub") is None
    assert any("not saved" in str(w.message) for w in caught)


def test_slo_capacity_is_bounded_by_the_server() -> None:
    # 2 ms of CPU per request: no rate above 500 req/s can meet any SLO for long (the
    # queue grows without bound); at 100 req/s a 50 ms SLO holds even on a noisy machine.
    with StubServer(busy_ms=2) as stub:
        cap = capacity.find_slo_capacity(stub.url, slo_ms=50, low=100, high=4000,
                                          duration=0.6, warmup=0.2, max_steps=6,
                                          precision=0.3, progress=False)
    assert 0 < cap.rate <= 500 * 1.1, cap.table()
    assert 1 <= len(cap.probes) <= 6 and len(cap.passed) == len(cap.probes)
    assert not all(cap.passed)
    assert max(r.rate for r, ok in zip(cap.probes, cap.passed) if ok) == cap.rate
    assert cap.elapsed_s > 0


def test_slo_capacity_searches_down_to_the_floor_when_low_is_too_high() -> None:
    # 2 ms of CPU per request: 2,000 req/s cannot meet the SLO, so the search halves.
    with StubServer(busy_ms=2) as stub:
        cap = capacity.find_slo_capacity(stub.url, slo_ms=50, low=2000, high=4000, floor=50,
                                          duration=0.5, warmup=0.2, max_steps=6,
                                          precision=0.3, progress=False)
    assert cap.passed[0] is False and cap.probes[0].rate == 2000
    assert 0 < cap.rate <= 500 * 1.1, cap.table()
    assert cap.probes[1].rate == 1000


def test_together_holds_a_delayed_request_until_the_burst_is_in() -> None:
    # The stub numbers requests by arrival and fails every 4th: the delayed one is the 4th.
    from lessons import probes

    with StubServer(status_every=4) as stub:
        replies = probes.together(stub.url, ["/a"] * 3 + ["/late"], delays=[0, 0, 0, 0.2])
    assert [r.status for r in replies] == [200, 200, 200, 500]
    with pytest.raises(ValueError, match="one per path"):
        probes.together("http://127.0.0.1:1", ["a", "b"], delays=[0])


def test_slo_capacity_is_zero_when_even_the_lowest_rate_fails() -> None:
    with StubServer(delay_ms=20) as stub:
        cap = capacity.find_slo_capacity(stub.url, slo_ms=10, low=20, duration=0.5,
                                          warmup=0.1, max_steps=3, progress=False)
    assert cap.rate == 0 and len(cap.probes) == 1
    assert any("lowest rate" in w for w in cap.warnings)


# --------------------------------------------------------------------------------------
# Plots (headless)
# --------------------------------------------------------------------------------------

def _fake(label: str, rate: float | None, scale: float, seed: int) -> Run:
    rng = np.random.default_rng(seed)
    s = rng.lognormal(0, 0.5, 5000) * scale
    q = np.quantile(s, [0.5, 0.9, 0.99, 0.999], method="inverted_cdf")
    return Run("open" if rate else "closed", 8, rate, 1.0, s.size, 1000.0 / scale, *q,
               float(s.max()), 0, 0, 0, 0, 20.0, None, 0, label=label, samples_ms=s)


def test_plots_draw_headless() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lessons import plots

    a = [_fake("A", None, 1.0, 1), _fake("A", None, 1.1, 2)]
    b = [_fake("B", None, 3.0, 3), _fake("B", None, 2.8, 4)]
    cmp = comparison.summarise([a[0], b[0], a[1], b[1]], ["A", "B"], "A")
    ax = plots.percentiles(cmp)
    assert ax.get_xscale() == "log"
    assert "99%" in [t.get_text() for t in ax.get_xticklabels()]
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["A", "B"]
    ax = plots.throughput(cmp)
    assert len(ax.patches) == 2
    probes = [_fake("p", rate, 1 + rate / 500, int(rate)) for rate in (100, 200, 400, 800)]
    cap = capacity.Capacity(rate=400, slo_ms=10, quantile=0.99, probes=probes,
                            passed=[True, True, True, False], client_limited=False,
                            elapsed_s=4.0)
    ax = plots.latency_vs_rate(cap)
    assert ax.get_xscale() == "log"
    ax.figure.canvas.draw()
    plt.close("all")


def test_arun_leaves_the_callers_event_loop_free() -> None:
    import asyncio

    async def main(url: str) -> tuple[Run, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        r = await launch.arun(url, connections=2, duration=0.5, warmup=0.0, save=False)
        ticker.cancel()
        return r, ticks

    with StubServer() as stub:
        r, ticks = asyncio.run(main(stub.url))
    assert r.requests > 0
    assert ticks >= 10  # the loop ran all along (0.5 s of load at 100 ticks/s)
