"""SLO capacity with an interval, and a waterfall of configurations measured on it.

A *probe* is an open-loop load at one fixed rate (``lessons.load``: each latency counts
from the request's intended send time) until ``samples`` requests are measured.  Its
p99 comes with bounds from order statistics: with ``n`` independent samples, the number
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
the bounds are optimistic; the repeats below show the rest of the spread.

Probes open connections as requests need them (``connections=1`` to start): gunicorn's
sync worker serves one request per connection and blocks reading a connection it has
accepted, so connections opened ahead and left idle hold its workers while requests on
other connections wait (measured here: p99 ~170 ms instead of ~15 ms at 25 req/s).

A *capacity* is searched on one grid of rates shared by every configuration, each
``2^(1/3)`` (1.26x) above the last: the highest rate that passed, and the next one up,
which did not.  The capacity lies between them: ``[low, high)``; ``low`` is 0 when the
lowest rate probed did not pass.

A *waterfall* (``measure``) applies steps one after another; each step is a server
profile and a path.  Every distinct server is started once (an idle server costs the
others nothing), and the whole list is measured ``repeats`` times, interleaved (step 1,
2, 3..., then again), so that a slow minute of the machine lands on every step alike:
each time, the step's throughput at saturation (closed loop, 16 connections: the work
per request) and its capacity (each search starting where the last one ended, so it
takes about two probes).  A step is a change ("up" or "down") when its range over the
repeats lies apart from the range of the measured step before it; for throughput, its
median must also differ by more than the machine's noise (the median over all steps of
how far a step's repeats spread, ``throughput_noise``) and by 10% at least; otherwise
"none".  A step that cannot change the server's
work carries the previous step's numbers and says why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from lessons.lab import Lab
    from lessons.load import Run
    from lessons.profile import Profile

__all__ = ["quantile_bounds", "allowed_over", "grid_rate", "grid_index", "Probe", "Capacity",
           "probe", "search", "Step", "StepResult", "Waterfall", "measure", "ameasure",
           "differences", "start_all", "idle", "throughput_noise"]

GRID_BASE = 100.0          # the grid passes through 100 req/s ...
GRID_PER_DOUBLING = 3      # ... with three rates per doubling (each 1.26x the last)
CONFIDENCE = 0.95          # one-sided, for each of the two bounds
THROUGHPUT_GAP = 1.10      # the least gap between throughput medians that counts as a change


# -- order statistics -------------------------------------------------------------------

def _binom_cdf(n: int, p: float) -> Any:
    """P(B <= k) for k = 0..n, B ~ binomial(n, p), computed in log space (numpy)."""
    import numpy as np

    k = np.arange(n + 1)
    logpmf = (math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
              + k * math.log(p) + (n - k) * math.log1p(-p))
    return np.cumsum(np.exp(logpmf))


def _upper_rank(n: int, q: float, confidence: float) -> int:
    """The rank (1-based) of the sorted sample that bounds the ``q`` quantile from above
    with ``confidence``; n + 1 when none does."""
    import numpy as np

    above = np.nonzero(1 - _binom_cdf(n, q) <= 1 - confidence)[0]   # P(B > k) <= alpha
    return int(above[0]) + 1 if len(above) else n + 1


def allowed_over(n: int, q: float = 0.99, confidence: float = CONFIDENCE) -> int:
    """How many of ``n`` samples may reach the SLO while the ``q`` quantile can still be
    shown under it (-1: with ``n`` samples it never can)."""
    return n - _upper_rank(n, q, confidence)


def quantile_bounds(samples: Any, q: float = 0.99, confidence: float = CONFIDENCE
                    ) -> tuple[float, float, float]:
    """(lower bound, estimate, upper bound) of the ``q`` quantile of ``samples``: each
    bound holds with probability ``confidence`` for independent samples.  The upper
    bound is +inf when there are too few samples to bound it (fewer than
    log(1 - confidence) / log(q): 299 for a p99 at 95%)."""
    import numpy as np

    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    estimate = float(np.quantile(x, q, method="inverted_cdf"))
    cdf = _binom_cdf(n, q)           # cdf[k] = P(B <= k): B samples fall below the quantile
    # Lower: the largest j with P(B < j) <= alpha, i.e. P(X_(j) > x_q) <= alpha.
    below = np.nonzero(cdf <= 1 - confidence)[0]      # k with P(B <= k) <= alpha: j = k + 1
    lower = float(x[below[-1]]) if len(below) else -math.inf
    j = _upper_rank(n, q, confidence)
    upper = float(x[j - 1]) if j <= n else math.inf
    return lower, estimate, upper


# -- the grid ----------------------------------------------------------------------------

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

    from lessons.load import run

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


# -- the waterfall -----------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One change, applied on top of the steps before it.

    ``profile`` and ``path`` are what the server runs after the change; ``checklist``
    marks an item of the guide's checklist; ``same_work`` (a sentence) marks a step that
    provably cannot change the server's work on this path: it is not re-measured."""

    text: str
    profile: Profile
    path: str
    checklist: bool = False
    same_work: str = ""
    env: tuple[tuple[str, str], ...] = ()


def differences(before: Step, after: Step) -> list[str]:
    """What ``after`` changes from ``before``: each knob of the profile that differs
    (``middleware: 'default' -> 'minimal'``), the path, the server's extra environment."""
    import dataclasses

    found = [f"{f.name}: {getattr(before.profile, f.name)!r} -> {getattr(after.profile, f.name)!r}"
             for f in dataclasses.fields(after.profile)
             if getattr(before.profile, f.name) != getattr(after.profile, f.name)]
    if before.path != after.path:
        found.append(f"path: {before.path} -> {after.path}")
    if before.env != after.env:
        found.append("server environment")
    return found


@dataclass
class StepResult:
    step: Step
    searches: list[Capacity]          # one per repeat
    throughput: list[float]           # req/s at saturation, one per repeat
    change: str = "none"              # capacity: "up", "down", "none", "start", "not re-measured"
    throughput_change: str = "none"   # the same for throughput

    @property
    def low(self) -> float:
        """The lowest ``low`` over the repeats."""
        return min(c.low for c in self.searches)

    @property
    def high(self) -> float:
        """The highest ``high`` over the repeats (inf when the top of the grid passed)."""
        return max(c.high if c.high is not None else math.inf for c in self.searches)

    @property
    def capacity(self) -> float:
        """The rate shown to hold the SLO in every repeat (``low``)."""
        return self.low

    @property
    def rps(self) -> float:
        import numpy as np

        return float(np.median(self.throughput))


@dataclass
class Waterfall:
    results: list[StepResult]
    repeats: int
    samples: int
    slo_ms: float
    seconds: float
    throughput_gap: float = THROUGHPUT_GAP   # the ratio of medians a throughput change needed

    def table(self) -> pd.DataFrame:
        """One row per step, in numbers: the capacity (the rate shown to hold the SLO in
        every repeat), the highest rate not shown to hold it in some repeat, the change;
        the throughput's median, min and max over the repeats and its change; the note of
        a step not re-measured."""
        import pandas as pd

        rows = []
        for r in self.results:
            rows.append({
                "step": r.step.text,
                "capacity (req/s)": r.low,
                "not shown at (req/s)": r.high,
                "change": r.change,
                "throughput (req/s)": r.rps,
                "throughput min (req/s)": min(r.throughput),
                "throughput max (req/s)": max(r.throughput),
                "throughput change": r.throughput_change,
                "note": r.step.same_work,
            })
        return pd.DataFrame(rows).set_index("step")

    def display(self) -> pd.DataFrame:
        """The same for a reader: each measure as text with its range over the repeats
        (the SLO capacity as "25-31": shown at 25 req/s, not at 31; "under 25": not even
        at the lowest rate probed), each search's result, the changes."""
        import pandas as pd

        def capacity(low: float, high: float | None) -> str:
            if not low:
                return f"under {high:,.0f}"
            return f"{low:,.0f}-{high:,.0f}" if high is not None and math.isfinite(high) else f"{low:,.0f}+"

        rows = []
        for r in self.results:
            rows.append({
                "step": r.step.text,
                "SLO capacity, req/s": capacity(r.low, r.high),
                "each search": "; ".join(capacity(c.low, c.high) for c in r.searches),
                "change": r.change,
                "throughput, req/s": f"{r.rps:,.0f} ({min(r.throughput):,.0f}-{max(r.throughput):,.0f})",
                "throughput change": r.throughput_change,
                "note": r.step.same_work,
            })
        return pd.DataFrame(rows).set_index("step")

    def record(self) -> list[dict[str, Any]]:
        """Plain values for ``nb.record`` (see lessons.claims.s11_quick_reference)."""
        return [{"step": r.step.text, "checklist": r.step.checklist, "measured": r.step.same_work == "",
                 "low": r.low, "high": r.high if math.isfinite(r.high) else None,
                 "searches": [[c.low, c.high] for c in r.searches], "change": r.change,
                 "throughput": r.throughput, "throughput change": r.throughput_change}
                for r in self.results]

    def of(self, text: str) -> StepResult:
        return next(r for r in self.results if r.step.text == text)


def _change(this: StepResult, before: StepResult) -> str:
    if this.low >= before.high:
        return "up"
    if this.high <= before.low:
        return "down"
    return "none"


def _throughput_change(this: StepResult, before: StepResult, gap: float = THROUGHPUT_GAP) -> str:
    if min(this.throughput) > max(before.throughput) and this.rps >= gap * before.rps:
        return "up"
    if max(this.throughput) < min(before.throughput) and before.rps >= gap * this.rps:
        return "down"
    return "none"


def throughput_noise(results: Sequence[StepResult]) -> float:
    """How much a step's throughput moved between repeats on this machine: the median,
    over the measured steps, of (max - min) / median (0 with a single repeat).  Two
    repeats per step say little about one step's spread; pooled over every step they
    say how noisy the machine was."""
    import numpy as np

    spreads = [(max(r.throughput) - min(r.throughput)) / r.rps for r in results
               if len(r.throughput) > 1 and r.rps > 0]
    return float(np.median(spreads)) if spreads else 0.0


def idle(server: Any, *, below: float = 0.1, timeout: float = 15.0) -> float:
    """Wait until ``server``'s processes use less than ``below`` of a core (or ``timeout``
    seconds pass); returns the seconds waited.  A server left with a queue of requests
    keeps the core busy after its load stopped."""
    from lessons.server import settle

    t0 = time.monotonic()
    settle(server.processes(), t0 + timeout, busy=below)
    return time.monotonic() - t0


def start_all(lab: Lab, configs: Sequence[tuple[Profile, tuple[tuple[str, str], ...]]]) -> Any:
    """Start one server per (profile, env) at once, on every CPU (nothing is measured
    while they start: each worker importing Django is CPU-bound), then pin every process
    and thread of each to the server's CPU set, where the lab would have started it.
    Returns the lab's ``Servers`` (label: the index), to stop with ``.stop()``."""
    from concurrent.futures import ThreadPoolExecutor

    from lessons import cpus
    from lessons.lab import Servers

    servers = Servers({str(i): lab.server(profile, env=dict(env)) for i, (profile, env) in enumerate(configs)})
    pin_to = lab.cpu_plan.server
    for srv in servers.values():
        srv.cpus = None
    try:
        with ThreadPoolExecutor(max(1, min(len(servers), 4))) as pool:
            list(pool.map(lambda srv: srv.start(), servers.values()))
        if pin_to is not None:
            for srv in servers.values():
                for proc in srv.processes():
                    try:
                        for thread in proc.threads():
                            cpus.pin(pin_to, thread.id)
                    except Exception:  # noqa: BLE001 - a process that just ended
                        pass
                srv.cpus = pin_to
    except BaseException:
        servers.stop()
        raise
    return servers


def measure(lab: Lab, steps: Sequence[Step], *, repeats: int, samples: int, slo_ms: float = 10.0,
            warm: Callable[[str, str], Any] | None = None, lowest: float = 25.0,
            highest: float = 6400.0, saturation_s: float = 1.0, progress: bool = True) -> Waterfall:
    """Measure every step ``repeats`` times, interleaved (see the module's docstring):
    its throughput at saturation (closed loop, 16 connections, ``saturation_s``) and its
    capacity, searched between the grid rates nearest ``lowest`` and ``highest`` (the
    same rate for both: one probe per step, a yes or no at that rate).  ``warm(url,
    path)`` runs once per step first (e.g. to fill a cache)."""
    from lessons.load import run

    t0 = time.monotonic()
    if not steps or steps[0].same_work:
        raise ValueError("the first step must be measured")
    say = print if progress else (lambda *_a, **_k: None)
    keys: list[tuple[Profile, tuple[tuple[str, str], ...]]] = []
    for s in steps:
        if not s.same_work and (s.profile, s.env) not in keys:
            keys.append((s.profile, s.env))
    servers = start_all(lab, keys)
    measured = [i for i, s in enumerate(steps) if not s.same_work]
    found: dict[int, list[Capacity]] = {i: [] for i in measured}
    rps: dict[int, list[float]] = {i: [] for i in measured}
    try:
        server = {k: servers[str(i)] for i, k in enumerate(keys)}
        if warm is not None:
            for i in measured:
                warm(server[(steps[i].profile, steps[i].env)].url, steps[i].path)
        for rep in range(repeats):
            previous: float | None = None
            for i in measured:
                s = steps[i]
                srv = server[(s.profile, s.env)]
                idle(srv)
                sat = run(srv.url + s.path, connections=16, duration=saturation_s, warmup=0.3,
                          label=f"step {i} saturation", save=False)
                rps[i].append(sat.rps)
                idle(srv)
                mine = found[i]
                start = mine[-1].low if mine and mine[-1].low else (previous or lowest)
                say(f"repeat {rep + 1}/{repeats}, step {i}: {s.text} ({sat.rps:,.0f} req/s at saturation)",
                    flush=True)
                cap = search(srv.url + s.path, start=start, samples=samples, slo_ms=slo_ms, lowest=lowest,
                             highest=highest, settle=lambda srv=srv: idle(srv),
                             progress=(lambda line: say("    " + line, flush=True)) if progress else None)
                mine.append(cap)
                previous = cap.low or previous
    finally:
        servers.stop()
    noise = throughput_noise([StepResult(steps[i], found[i], rps[i]) for i in measured])
    gap = max(THROUGHPUT_GAP, 1 + noise)
    results: list[StepResult] = []
    last: StepResult | None = None
    for i, s in enumerate(steps):
        if s.same_work:
            assert last is not None
            results.append(StepResult(s, last.searches, last.throughput, "not re-measured", "not re-measured"))
            continue
        r = StepResult(s, found[i], rps[i])
        if last is None:
            r.change = r.throughput_change = "start"
        else:
            r.change, r.throughput_change = _change(r, last), _throughput_change(r, last, gap)
        results.append(r)
        last = r
    return Waterfall(results, repeats, samples, slo_ms, time.monotonic() - t0, gap)


async def ameasure(lab: Lab, steps: Sequence[Step], **kwargs: Any) -> Waterfall:
    """``measure`` for ``await`` (runs in a thread; the notebook's event loop keeps
    running)."""
    import asyncio
    import functools

    return await asyncio.to_thread(functools.partial(measure, lab, steps, **kwargs))
