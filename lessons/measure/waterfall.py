"""A waterfall of configurations measured on the SLO capacity grid (``lessons.measure.grid``).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lessons.measure.grid import Capacity, search
from lessons.measure.launch import run

if TYPE_CHECKING:
    import pandas as pd

    from lessons.lab import Lab
    from lessons.profile import Profile

__all__ = ["THROUGHPUT_GAP", "Step", "StepResult", "Waterfall", "measure", "ameasure",
           "differences", "start_all", "idle", "throughput_noise"]

THROUGHPUT_GAP = 1.10      # the least gap between throughput medians that counts as a change


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
    from lessons.lab import Servers
    from lessons.server import start_together

    servers = Servers({str(i): lab.server(profile, env=dict(env)) for i, (profile, env) in enumerate(configs)})
    start_together(list(servers.values()), lab.cpu_plan.server)
    return servers


def measure(lab: Lab, steps: Sequence[Step], *, repeats: int, samples: int, slo_ms: float = 10.0,
            warm: Callable[[str, str], Any] | None = None, lowest: float = 25.0,
            highest: float = 6400.0, saturation_s: float = 1.0, progress: bool = True) -> Waterfall:
    """Measure every step ``repeats`` times, interleaved (see the module's docstring):
    its throughput at saturation (closed loop, 16 connections, ``saturation_s``) and its
    capacity, searched between the grid rates nearest ``lowest`` and ``highest`` (the
    same rate for both: one probe per step, a yes or no at that rate).  ``warm(url,
    path)`` runs once per step first (e.g. to fill a cache)."""
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
    results, gap = _judge(steps, found, rps)
    return Waterfall(results, repeats, samples, slo_ms, time.monotonic() - t0, gap)


def _judge(steps: Sequence[Step], found: dict[int, list[Capacity]], rps: dict[int, list[float]]
           ) -> tuple[list[StepResult], float]:
    """Each step's result and change from the measured step before it; the throughput gap
    that counted as a change on this machine."""
    noise = throughput_noise([StepResult(steps[i], found[i], rps[i]) for i in found])
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
    return results, gap


async def ameasure(lab: Lab, steps: Sequence[Step], **kwargs: Any) -> Waterfall:
    """``measure`` for ``await`` (runs in a thread; the notebook's event loop keeps
    running)."""
    import asyncio
    import functools

    return await asyncio.to_thread(functools.partial(measure, lab, steps, **kwargs))
