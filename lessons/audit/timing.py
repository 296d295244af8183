"""Timing one endpoint of a running server, with the lab's load generator (``lessons.measure``).

Three measurements, one after another, the server left idle before each
(``lessons.measure.waterfall.idle``: a queue left by the previous load must not be paid
by the next):

* throughput: a closed loop of 16 connections (``launch.run``), the work per request at
  saturation, as notebook 11 measures it;
* p99 at ``FIXED_RATE``, open loop (each latency counted from the request's intended send
  time), with its bounds from order statistics (``lessons.measure.bounds``): the same load
  on every server, endpoint and step, so their p99s compare (not run where the throughput
  is lower than that rate: see ``time_endpoint``);
* SLO capacity on the lab's grid of rates (``grid.search``, as notebook 11): the highest
  rate whose probe of 300 requests shows p99 under the SLO (the upper bound, 95%) with no
  error, from 25 req/s up (a smoke run: from 40); the search starts where the throughput
  and the fixed-rate p99 point (or where the caller says), so that it takes few probes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lessons.audit.serve import ProjectServer
    from lessons.measure.grid import Capacity

__all__ = ["FIXED_RATE", "SEARCH_START", "Plan", "plan", "Timed", "time_endpoint", "finite", "ms",
           "capacity_text", "capacity_under"]

FIXED_RATE = 100.0        # req/s: the grid's base rate (lessons.measure.grid.GRID_BASE)
SEARCH_START = 0.6        # the capacity search starts at this share of the throughput
LOWEST, HIGHEST = 25.0, 6400.0   # the grid's range, notebook 11's


@dataclass(frozen=True)
class Plan:
    """How long each measurement runs (``quick``: the smoke-run sizes)."""

    counted: int          # requests counted per endpoint (one after another)
    saturation_s: float   # the closed loop's measured seconds
    fixed_samples: int    # requests at FIXED_RATE (from 299 on, the p99 has an upper bound)
    samples: int          # requests per capacity probe (300: a pass is possible)
    repeats: int          # --apply: each step measured this many times, interleaved
    lowest: float         # the lowest rate the capacity search probes (below: "under" it)


def plan(quick: bool) -> Plan:
    if quick:  # notebook 11's grid starts at 25 req/s; a smoke run stops two rates higher
        return Plan(counted=10, saturation_s=0.5, fixed_samples=100, samples=300, repeats=1, lowest=40.0)
    return Plan(counted=50, saturation_s=2.0, fixed_samples=300, samples=300, repeats=2, lowest=LOWEST)


@dataclass(frozen=True)
class Timed:
    rps: float
    p99_ms: float | None      # None: not measured (see ``note``)
    p99_low_ms: float
    p99_high_ms: float
    samples: int              # measured requests at FIXED_RATE
    errors: int               # of those: errors, timeouts, non-2xx and dropped
    capacity: Capacity
    non_2xx: int = 0          # answers outside 2xx in every run above (timeouts are not answers)
    note: str = ""            # what was not measured, and why

    def row(self) -> dict[str, float | int | str | None]:
        """The numbers as an endpoint or step row gives them (JSON: no infinity)."""
        return {"rps": self.rps, "p99_ms": self.p99_ms, "p99_low_ms": finite(self.p99_low_ms),
                "p99_high_ms": finite(self.p99_high_ms), "p99_rate": FIXED_RATE,
                "p99_samples": self.samples, "p99_errors": self.errors,
                "slo_capacity_rps": self.capacity.low,
                "slo_capacity_not_shown_at_rps": self.capacity.high, "non_2xx": self.non_2xx,
                "note": self.note}


def time_endpoint(server: ProjectServer, path: str, sizes: Plan, slo_ms: float,
                  start: float | None = None) -> Timed:
    """Throughput, fixed-rate p99 and SLO capacity of ``GET path`` on ``server``.

    An open loop faster than the server's throughput at saturation only grows a queue
    (and the p99 with the run's length, up to the timeout): the fixed-rate run is skipped
    when the throughput is under ``FIXED_RATE``, and the capacity search when it is
    under the lowest rate searched (the capacity is then "under" that rate), each said
    in ``note``; an overloaded server would also take seconds to drain its queue."""
    from lessons.measure.bounds import quantile_bounds
    from lessons.measure.grid import Capacity, grid_index, grid_rate, search
    from lessons.measure.launch import run
    from lessons.measure.waterfall import idle

    url = server.url + path
    idle(server)
    sat = run(url, connections=16, duration=sizes.saturation_s, warmup=0.3, save=False)
    notes, p99, low, high, fixed = [], None, math.nan, math.nan, None
    if sat.rps >= FIXED_RATE:
        idle(server)
        fixed = run(url, rate=FIXED_RATE, duration=sizes.fixed_samples / FIXED_RATE, warmup=0.3,
                    timeout=1.0, connections=1, save=False)
        low, p99, high = quantile_bounds(fixed.samples_ms, 0.99)
    else:
        notes.append(f"no p99 at {FIXED_RATE:g} req/s: the throughput at saturation, {sat.rps:,.0f} "
                     "req/s, is lower")
    if sat.rps >= sizes.lowest:
        idle(server)
        first = start or _first_rate(sat.rps, p99, slo_ms, sizes.lowest)
        cap = search(url, start=first, samples=sizes.samples, slo_ms=slo_ms, lowest=sizes.lowest,
                     highest=HIGHEST, settle=lambda: idle(server))
    else:
        cap = Capacity(0.0, grid_rate(grid_index(sizes.lowest)), [])
        notes.append(f"no capacity search: the throughput at saturation is under {cap.high:,.0f} "
                     "req/s, the lowest rate the search probes")
    return Timed(rps=sat.rps, p99_ms=p99, p99_low_ms=low, p99_high_ms=high,
                 samples=fixed.requests if fixed else 0,
                 errors=fixed.errors + fixed.non_2xx + fixed.dropped if fixed else 0,
                 capacity=cap, non_2xx=sat.non_2xx + (fixed.non_2xx if fixed else 0)
                 + sum(r.non_2xx for probe in cap.probes for r in probe.runs),
                 note="; ".join(notes))


def _first_rate(rps: float, p99: float | None, slo_ms: float, lowest: float) -> float:
    """Where the capacity search starts: under ``FIXED_RATE`` when the p99 there missed
    the SLO, else at ``SEARCH_START`` of the throughput (each probe a search saves is
    a few seconds; a failing one at a low rate the longest)."""
    first = SEARCH_START * rps
    if p99 is not None and p99 >= slo_ms:
        first = min(first, FIXED_RATE * 0.8)
    return max(first, lowest)


def finite(x: float) -> float | None:
    """``x``, or None for an infinite or undefined bound (JSON has no infinity)."""
    return x if math.isfinite(x) else None


def capacity_text(low: float, high: float | None, *, unit: str = " req/s") -> str:
    """An SLO capacity ``[low, high)`` for a sentence: ``low`` is 0 when no rate probed
    passed (or none was probed), and the capacity is then under ``high``, not zero."""
    if low:
        return f"{low:,.0f}{unit}"
    return f"under {high:,.0f}{unit}" if high is not None and math.isfinite(high) else "not measured"


def capacity_under(row: dict[str, Any]) -> str | None:
    """A table row's capacity when no rate probed held the SLO ("under 126", for a cell or
    a bar's label), else None: the row's own number stands."""
    high = row.get("slo_capacity_not_shown_at_rps")
    return None if row.get("slo_capacity_rps") or not high else capacity_text(0.0, high, unit="")


def ms(value: float | None) -> str:
    """A latency for a progress line ("-" when not measured)."""
    return "-" if value is None else f"{value:.2f} ms"
