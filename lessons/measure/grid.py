"""SLO capacity with an interval, on a grid of rates shared by every configuration.

A *probe* is an open-loop load at one fixed rate (``lessons.measure.launch``: each
latency counts from the request's intended send time) until ``samples`` requests are
measured.  Its p99 comes with bounds from order statistics: with ``n`` independent samples, the number
below the true p99 is binomial(n, 0.99), which says how likely each sorted sample is to
lie below or above it.  The probe **passes** when the p99's upper bound (one-sided 95%)
is under the SLO and no request erred (error, timeout, non-2xx or dropped); it
**fails** when the lower bound reaches the SLO or a request erred; otherwise it is
**unsure**.  With ``n`` under 299 no upper bound exists (a p99 of a few hundred
requests is their slowest or nearly); with 300 it is the slowest request, so a pass
needs all 300 under the SLO.  A probe runs in parts (50, 100, 150 requests for 300)
and stops as soon as a pass is out of reach.  Every probe takes the same ``samples``,
whatever the configuration (a stricter test for one than another would tilt the
comparison).  Consecutive latencies are not independent (a pause delays several), so
the bounds are optimistic; the repeats of a waterfall show the rest of the spread.

Probes open connections as requests need them (``connections=1`` to start): gunicorn's
sync worker serves one request per connection and blocks reading a connection it has
accepted, so connections opened ahead and left idle hold its workers while requests on
other connections wait (measured here: p99 ~170 ms instead of ~15 ms at 25 req/s).

A *capacity* is searched on one grid of rates shared by every configuration, each
``2^(1/3)`` (1.26x) above the last: the highest rate that passed, and the next one up,
which did not.  The capacity lies between them: ``[low, high)``; ``low`` is 0 when the
lowest rate probed did not pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lessons.measure.bounds import allowed_over, quantile_bounds
from lessons.measure.launch import run
from lessons.measure.result import Run

__all__ = ["GRID_BASE", "GRID_PER_DOUBLING", "grid_rate", "grid_index", "Probe", "probe",
           "Capacity", "search"]

GRID_BASE = 100.0          # the grid passes through 100 req/s ...
GRID_PER_DOUBLING = 3      # ... with three rates per doubling (each 1.26x the last)


def grid_rate(k: int) -> float:
    """The k-th rate of the grid (k may be negative)."""
    return GRID_BASE * 2 ** (k / GRID_PER_DOUBLING)


def grid_index(rate: float) -> int:
    """The grid index of the rate nearest ``rate``."""
    return round(GRID_PER_DOUBLING * math.log2(rate / GRID_BASE))


# -- probes and searches -----------------------------------------------------------------

@dataclass
class Probe:
    """One rate, measured: its p99 with bounds and what that shows."""

    rate: float
    requests: int
    p50_ms: float
    p99_ms: float
    p99_low_ms: float
    p99_high_ms: float
    errors: int             # errors (timeouts included) + non-2xx + dropped
    outcome: str            # "pass", "fail" or "unsure"
    seconds: float
    runs: list[Run] = field(default_factory=list, repr=False)


def _parts(samples: int, first: int = 50) -> list[int]:
    """50, 100, 150 for 300: each part twice the one before, the last one the rest."""
    parts, size = [], first
    while sum(parts) < samples:
        parts.append(min(size, samples - sum(parts)))
        size *= 2
    return parts


def probe(url: str, rate: float, *, samples: int, slo_ms: float = 10.0, warmup: float = 0.2,
          timeout: float = 1.0, connections: int = 1, label: str = "") -> Probe:
    """Load ``url`` at ``rate`` until ``samples`` requests are measured, in parts (see
    ``_parts``); stop after a part that leaves a pass out of reach (an error, or more
    requests at or over the SLO than ``samples`` may have) and judge what was measured."""
    import numpy as np

    t0 = time.monotonic()
    runs: list[Run] = []
    allowed = allowed_over(samples)
    for part in _parts(samples):
        runs.append(run(url, rate=rate, duration=part / rate, warmup=warmup, timeout=timeout,
                        connections=connections, label=label or f"probe {rate:,.0f}/s", save=False))
        lat = np.concatenate([r.samples_ms for r in runs if r.samples_ms is not None])
        errors = sum(r.errors + r.non_2xx + r.dropped for r in runs)
        if errors or int((lat >= slo_ms).sum()) > allowed:
            break
    low, p99, high = quantile_bounds(lat, 0.99)
    if errors or low >= slo_ms:
        outcome = "fail"
    elif high < slo_ms and len(lat) >= samples:
        outcome = "pass"
    else:
        outcome = "unsure"
    return Probe(rate=rate, requests=int(len(lat)), p50_ms=float(np.median(lat)) if len(lat) else math.nan,
                 p99_ms=p99, p99_low_ms=low, p99_high_ms=high, errors=int(errors), outcome=outcome,
                 seconds=time.monotonic() - t0, runs=runs)


@dataclass
class Capacity:
    """The capacity lies in ``[low, high)``: ``low`` passed (0: no rate did), ``high`` is
    the next rate of the grid, which did not (None: the highest rate tried passed)."""

    low: float
    high: float | None
    probes: list[Probe]

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.probes)

    def __str__(self) -> str:
        top = f"{self.high:,.0f}" if self.high is not None else "?"
        return f"[{self.low:,.0f}, {top}) req/s ({len(self.probes)} probes, {self.seconds:.0f} s)"


def search(url: str, *, start: float, samples: int, slo_ms: float = 10.0, lowest: float = 25.0,
           highest: float = 6400.0, progress: Callable[[str], None] | None = None,
           settle: Callable[[], Any] | None = None, **probe_args: Any) -> Capacity:
    """The capacity on the grid, starting at the grid rate nearest ``start``: up while
    probes pass, down while they do not, until a passing rate sits right below one that
    did not; never below ``lowest`` nor above ``highest``.  ``settle()`` runs after a
    probe that did not pass (an overloaded server is still working through its queue
    when the client stops: the next probe must not pay for it)."""
    k = min(max(grid_index(start), grid_index(lowest)), grid_index(highest))
    lo_k, hi_k = grid_index(lowest), grid_index(highest)
    done: dict[int, Probe] = {}
    probes: list[Probe] = []
    while True:
        p = probe(url, grid_rate(k), samples=samples, slo_ms=slo_ms, **probe_args)
        done[k] = p
        probes.append(p)
        if progress:
            high = "inf" if math.isinf(p.p99_high_ms) else f"{p.p99_high_ms:.2f}"
            progress(f"{p.rate:7,.0f} req/s: p99 {p.p99_ms:6.2f} ms [{p.p99_low_ms:.2f}, {high}], "
                     f"{p.requests} requests, {p.errors} errors: {p.outcome}")
        if p.outcome != "pass" and settle is not None:
            settle()
        if p.outcome == "pass":
            if k + 1 in done or k >= hi_k:
                break
            k += 1
        else:
            if k - 1 in done or k <= lo_k:
                break
            k -= 1
    passed = [i for i, p in done.items() if p.outcome == "pass"]
    # The highest pass with no failure right above it counts (a pass above a failure is
    # noise the search did not chase; its lower neighbour's result stands).
    best = max((i for i in passed if i + 1 not in done or done[i + 1].outcome != "pass"), default=None)
    if best is None:
        return Capacity(0.0, grid_rate(min(done)), probes)
    return Capacity(grid_rate(best), grid_rate(best + 1) if best < hi_k else None, probes)

