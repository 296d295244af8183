"""Capacity under an SLO: ``find_slo_capacity(url)``, the highest open-loop rate whose p99
(or another quantile) stays under the SLO with no error, non-2xx or dropped request.

The search (``CapacitySearch``) ramps up from ``low`` by doubling until a probe fails,
halves down to ``floor`` when even ``low`` failed, then bisects between the best pass and
the first failure; one probe per rate.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lessons.measure.launch import run
from lessons.measure.result import Run, table
from lessons.measure.spec import by_speed, join_url

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Capacity", "CapacitySearch", "find_slo_capacity", "afind_slo_capacity"]


@dataclass
class Capacity:
    """The highest probed open-loop rate that met the SLO (0: none did)."""

    rate: float
    slo_ms: float
    quantile: float
    probes: list[Run]
    passed: list[bool]
    client_limited: bool
    elapsed_s: float
    url: str = ""
    warnings: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per probe, in rate order, with ``passed`` and the SLO quantile."""
        df = table(self.probes)
        df[f"q{self.quantile:g}_ms"] = [r.quantile_ms(self.quantile) for r in self.probes]
        df["passed"] = self.passed
        return df.sort_values("rate").reset_index(drop=True)

    def __str__(self) -> str:
        q = f"p{self.quantile * 100:g}"
        head = (f"capacity at {q} < {self.slo_ms:g} ms: {self.rate:,.0f} req/s "
                f"({len(self.probes)} probes, {self.elapsed_s:.0f} s)")
        return head + "".join(f"\nwarning: {w}" for w in self.warnings)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from html import escape

        cols = ["rate", "rps", "p50_ms", "p99_ms", f"q{self.quantile:g}_ms", "errors",
                "non_2xx", "dropped", "client_cpu_pct", "passed"]
        from lessons.tables import readable

        html = f"<b>{escape(str(self).splitlines()[0])}</b>"
        html += readable(self.table()[cols]).hide(axis="index").to_html()
        if self.warnings:
            html += "<ul>" + "".join(f"<li>{escape(w)}</li>" for w in self.warnings) + "</ul>"
        return html




class CapacitySearch:
    """One search: its settings, the probes so far and the bracket ``[best, fail)``."""

    def __init__(self, target: str, *, slo_ms: float, quantile: float, low: float,
                 high: float, floor: float, precision: float, max_steps: int,
                 progress: bool, **load: Any) -> None:
        self.target, self.slo_ms, self.quantile = target, slo_ms, quantile
        self.low, self.high, self.floor = low, high, floor
        self.precision, self.max_steps, self.progress = precision, max_steps, progress
        self.load = load            # duration, min_samples and run()'s arguments
        self.probes: list[Run] = []
        self.passed: list[bool] = []
        self.client_limited = False
        self.steps = 0
        self.best = 0.0             # the highest rate that passed (0: none yet)
        self.fail: float | None = None   # the lowest rate that failed above it
        self.q = f"p{quantile * 100:g}"

    def probe(self, rate: float) -> bool:
        """One open-loop run at ``rate``: does it meet the SLO?"""
        load = dict(self.load)
        duration, min_samples = load.pop("duration"), load.pop("min_samples")
        self.steps += 1
        r = run(self.target, rate=rate, duration=max(duration, min_samples / rate),
                label=f"slo probe {rate:,.0f}/s", **load)
        lat = r.quantile_ms(self.quantile)
        ok = (r.requests > 0 and lat < self.slo_ms and r.errors == 0 and r.non_2xx == 0
              and r.dropped == 0)
        if not ok and r.flags.get("client_saturated"):
            self.client_limited = True
        self.probes.append(r)
        self.passed.append(ok)
        if self.progress:
            self._say(rate, r, lat, ok)
        return ok

    def _say(self, rate: float, r: Run, lat: float, ok: bool) -> None:
        q = self.q
        why = "" if ok else " (" + ", ".join(
            w for w, bad in ((f"{q} {lat:.1f} ms", not lat < self.slo_ms),
                             (f"{r.errors} errors", r.errors),
                             (f"{r.non_2xx} non-2xx", r.non_2xx),
                             (f"{r.dropped} dropped", r.dropped)) if bad) + ")"
        print(f"  {rate:>9,.0f} req/s: {q} {lat:7.2f} ms, p50 {r.p50_ms:6.2f} ms  "
              f"{'pass' if ok else 'FAIL'}{why}", flush=True)

    def ramp(self) -> None:
        """Double from ``low`` until a probe fails or ``high`` passes."""
        rate = self.low
        while self.steps < self.max_steps:
            if not self.probe(rate):
                self.fail = rate
                return
            self.best = rate
            if rate >= self.high:
                return
            rate = min(rate * 2, self.high)

    def halve(self) -> None:
        """The first probe failed: halve down to ``floor`` until one passes."""
        while (self.best == 0 and self.fail is not None and self.steps < self.max_steps
               and self.fail / 2 >= self.floor):
            rate = self.fail / 2
            if self.probe(rate):
                self.best = rate
            else:
                self.fail = rate

    def open_bracket(self) -> bool:
        """A pass below a failure, further apart than ``precision``."""
        return (self.fail is not None and self.best > 0
                and self.fail / self.best > 1 + self.precision)

    def bisect(self) -> None:
        """Bisect (in log space) between the best pass and the first failure."""
        while self.open_bracket() and self.steps < self.max_steps:
            assert self.fail is not None
            mid = math.sqrt(self.best * self.fail)
            if self.probe(mid):
                self.best = mid
            else:
                self.fail = mid

    def warnings(self) -> list[str]:
        warnings: list[str] = []
        if self.best == 0:
            lowest = min(r.rate or self.low for r in self.probes) if self.probes else self.low
            warnings.append(f"The SLO failed even at the lowest rate probed, {lowest:,.0f} req/s.")
        if self.client_limited:
            warnings.append("A failing probe ran out of client CPU: the load generator, not "
                            "the server, may have set this limit (try processes=2 or a "
                            "faster machine).")
        if self.fail is None and self.best >= self.high:
            warnings.append(f"The SLO held up to the highest rate probed ({self.high:,.0f} "
                            "req/s): the capacity is at least that.")
        elif self.open_bracket():
            warnings.append(f"The search stopped after {self.max_steps} probes: the capacity "
                            f"is between {self.best:,.0f} and {self.fail:,.0f} req/s.")
        invalid = sum(1 for r, ok in zip(self.probes, self.passed) if ok and not r.valid)
        if invalid:
            warnings.append(f"{invalid} passing probe(s) had validity warnings (see "
                            ".probes[i].warnings).")
        return warnings

    def run(self) -> Capacity:
        """Ramp, halve, bisect; the capacity found."""
        t0 = time.monotonic()
        if self.progress:
            print(f"SLO capacity search: {self.q} < {self.slo_ms:g} ms at {self.target}",
                  flush=True)
        self.ramp()
        self.halve()
        self.bisect()
        cap = Capacity(rate=self.best, slo_ms=self.slo_ms, quantile=self.quantile,
                       probes=self.probes, passed=self.passed,
                       client_limited=self.client_limited, elapsed_s=time.monotonic() - t0,
                       url=self.target, warnings=self.warnings())
        if self.progress:
            print(str(cap), flush=True)
        return cap


def find_slo_capacity(
    url: str,
    *,
    path: str = "",
    slo_ms: float = 10.0,
    quantile: float = 0.99,
    low: float = 50.0,
    high: float = 50_000.0,
    duration: float | None = None,
    warmup: float | None = None,
    timeout: float = 1.0,
    precision: float = 0.1,
    max_steps: int = 12,
    connections: int = 16,
    headers: Mapping[str, str] | None = None,
    processes: int = 1,
    min_samples: int = 0,
    floor: float | None = None,
    progress: bool = True,
    save: bool = True,
) -> Capacity:
    """Search the highest open-loop rate at which the ``quantile`` latency is under
    ``slo_ms`` with zero errors, non-2xx and dropped requests.

    Doubling from ``low`` until a probe fails (or ``high`` passes), then bisection (in log
    space) until the bracket is within ``precision`` (10%), at most ``max_steps`` probes
    in all: the search takes at most ``max_steps x (warmup + duration + timeout + ~1 s)``.
    ``duration`` defaults to 2 s (1 s with ``LAB_QUICK=1``), ``warmup`` to 0.5 s.
    One probe per rate: on a noisy machine the answer moves by a step or two; compare
    capacities measured in the same session.  ``min_samples`` lengthens probes at low
    rates so each has at least that many requests (a p99 of 20 samples is their maximum).
    When the probe at ``low`` fails, the search halves the rate down to ``floor`` (default:
    ``low``, i.e. no further) before it reports 0.
    """
    if not 0 < quantile < 1:
        raise ValueError("quantile is between 0 and 1, e.g. 0.99")
    if not 0 < low <= high:
        raise ValueError("need 0 < low <= high")
    search = CapacitySearch(
        join_url(url, path), slo_ms=slo_ms, quantile=quantile, low=low, high=high,
        floor=low if floor is None else floor, precision=precision, max_steps=max_steps,
        progress=progress, duration=by_speed(duration, 2.0, 1.0), min_samples=min_samples,
        connections=connections, warmup=by_speed(warmup, 0.5, 0.5), timeout=timeout,
        headers=headers, processes=processes, save=save)
    return search.run()


async def afind_slo_capacity(url: str, **kwargs: Any) -> Capacity:
    """``find_slo_capacity`` for ``await`` (runs in a thread)."""
    return await asyncio.to_thread(functools.partial(find_slo_capacity, url, **kwargs))
