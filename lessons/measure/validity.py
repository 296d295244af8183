"""Whether the client, not the server, may have shaped a run: one rule per warning.

Each rule reads the merged facts of a run (``Facts``) and returns its warning, or None.
``check(facts)`` applies them in order and sets the run's flags: ``client_saturated``
and ``send_lag_high`` make a run invalid (so do a dropped request or no request at all,
see ``Run.valid``); ``not_pinned`` and ``machine_busy`` only warn (more noise, not a
wrong measurement).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lessons.measure.spec import BUSY_PCT, LAG_LIMIT_MS, LATE_MS, SATURATED_PCT, LoadSpec

__all__ = ["Facts", "check", "RULES"]


@dataclass(frozen=True)
class Facts:
    """What the rules read: the spec, the summed counters of every load process, the
    client's CPU use and the CPU plan."""

    spec: LoadSpec
    counts: dict[str, int]          # ok, non_2xx, connect_errors, resets, timeouts...
    cpu: float                      # the load processes' CPU, percent of one core, summed
    cpu_each: list[float]           # the same per load process
    lag_p99: float | None
    processes: int
    plan: Any                       # lessons.cpus.plan()
    pinned: bool
    own: float                      # our use of the client's CPUs (percent, per CPU)
    busy: dict[int, float]          # every CPU's busy percent over the run

    @property
    def responses(self) -> int:
        return self.counts["ok"] + self.counts["non_2xx"]

    @property
    def requests(self) -> int:
        c = self.counts
        return self.responses + c["connect_errors"] + c["resets"] + c["timeouts"]

    @property
    def n_client(self) -> int:
        return len(self.plan.client) if self.plan.client else 1

    @property
    def saturated(self) -> bool:
        return max(self.cpu_each) > SATURATED_PCT or self.cpu > SATURATED_PCT * self.n_client

    @property
    def lag_high(self) -> bool:
        return bool(self.lag_p99 is not None and self.lag_p99 > LAG_LIMIT_MS)


Rule = Callable[[Facts], "str | None"]


def no_request(f: Facts) -> str | None:
    if f.requests == 0:
        return "No request finished: is the server running at that address?"
    return None


def client_saturated(f: Facts) -> str | None:
    if f.saturated:
        return (f"The load generator used {f.cpu:.0f}% of a core: it may have been "
                "the bottleneck, so the server could be faster than measured.")
    return None


def send_lag_high(f: Facts) -> str | None:
    if f.lag_high:
        return (f"Requests went out late (p99 send lag {f.lag_p99:.2f} ms, "
                f"{f.counts['late']:,} more than {LATE_MS:g} ms late): the client was "
                "short of CPU or of free connections; latencies still count from "
                "the intended send time.")
    return None


def _counted(key: str, text: str) -> Rule:
    """The rule that warns when the counter ``key`` is not 0: ``text`` with ``n``, the
    count, and ``timeout``, the spec's."""
    def rule(f: Facts) -> str | None:
        n = f.counts[key]
        return text.format(n=n, timeout=f.spec.timeout) if n else None

    rule.__name__ = rule.__qualname__ = key
    return rule


dropped = _counted("dropped", "{n:,} requests were dropped (never sent: no free connection "
                              "in time), so the percentiles understate the latency.")
timeouts = _counted("timeouts", "{n:,} requests timed out after {timeout:g} s (counted as "
                                "errors, recorded at the timeout).")
connect_errors = _counted("connect_errors", "{n:,} requests failed because no connection "
                                            "could be opened (refused or timed out).")
resets = _counted("resets", "{n:,} requests failed on an open connection (closed or reset "
                            "before a complete response, or an unreadable response).")
non_2xx = _counted("non_2xx", "{n:,} responses had a non-2xx status.")


def under_served(f: Facts) -> str | None:
    duration, rate = f.spec.duration, f.spec.rate
    if f.spec.open and f.requests and f.responses < 0.9 * rate * duration:
        return (f"The server answered {f.responses / duration:,.0f} req/s of the "
                f"{rate:,.0f} req/s offered.")
    return None


def crowded_client(f: Facts) -> str | None:
    if f.pinned and f.processes > f.n_client:
        return (f"{f.processes} load processes shared {f.n_client} client CPU(s): "
                "more processes than cores only add contention.")
    return None


def not_pinned(f: Facts) -> str | None:
    if not f.pinned:
        return f"The load generator was not pinned to its own CPU ({f.plan.note})."
    return None


def machine_busy(f: Facts) -> str | None:
    """Other programs on the client's core (its busy time beyond our own CPU use), or
    the CPUs outside the server and client sets more than 80% busy."""
    if not f.pinned:
        return None
    client = f.plan.client
    client_busy = sum(f.busy.get(c, 0.0) for c in client) / f.n_client
    others = sorted(set(f.busy) - set(client) - set(f.plan.server or ()))
    other_busy = (sum(f.busy[c] for c in others) / len(others)) if others else 0.0
    if client_busy - f.own > BUSY_PCT:
        return (f"Other processes (a database, the notebook, other programs) "
                f"used about {client_busy - f.own:.0f}% of the load generator's "
                "CPU during the run: expect noise.")
    if others and other_busy > 80.0:
        return (f"The other CPUs were {other_busy:.0f}% busy during the run "
                "(other programs, or the database under load): expect noise.")
    return None


RULES: tuple[Rule, ...] = (no_request, client_saturated, send_lag_high, dropped, timeouts,
                           connect_errors, resets, non_2xx, under_served, crowded_client,
                           not_pinned, machine_busy)


def check(f: Facts) -> tuple[list[str], dict[str, bool]]:
    """The run's warnings, in rule order, and its flags."""
    warnings = [w for w in (rule(f) for rule in RULES) if w is not None]
    flags = {"client_saturated": f.saturated, "send_lag_high": f.lag_high,
             "not_pinned": not f.pinned, "machine_busy": machine_busy(f) is not None}
    return warnings, flags
