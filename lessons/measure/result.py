"""``Run``: one measured run (its counts, exact percentiles and raw samples), and
``table(runs)``: one DataFrame row per run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lessons.measure.spec import LATE_MS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "table", "quantiles", "JSON_KEYS"]

JSON_KEYS = ("mode", "connections", "rate", "duration_s", "requests", "rps", "p50_ms",
             "p90_ms", "p99_ms", "p999_ms", "max_ms", "errors", "non_2xx", "dropped",
             "client_cpu_pct")


@dataclass
class Run:
    """One measured run.  Times are milliseconds; ``samples_ms`` holds every latency."""

    mode: str                   # "closed" or "open"
    connections: int            # closed: the connections; open: the most the pool opened
    rate: float | None          # open loop: offered requests/s; closed loop: None
    duration_s: float           # the measured window (warm-up excluded)
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int                 # includes timeouts
    timeouts: int
    non_2xx: int
    dropped: int
    client_cpu_pct: float       # load process CPU, percent of one core (summed)
    send_lag_p99_ms: float | None
    late: int
    send_lag_max_ms: float | None = None
    connect_errors: int = 0     # part of errors: no connection could be opened
    resets: int = 0             # part of errors: connection lost mid-request, bad response
    label: str = ""
    url: str = ""
    warnings: list[str] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)
    samples_ms: Any = field(default=None, repr=False)   # numpy float64 array
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def valid(self) -> bool:
        """False when the client, not the server, may have shaped the numbers: no request
        finished, the client was short of CPU, requests went out late, or some were
        dropped.  (A busy machine or no pinning only adds warnings: more noise.)"""
        return (self.requests > 0 and not self.flags.get("client_saturated", False)
                and not self.flags.get("send_lag_high", False) and self.dropped == 0)

    def to_json_dict(self) -> dict[str, Any]:
        """Exactly the 15 keys of ``python -m lessons bench --json`` (errors include
        timeouts; a percentile without samples is None)."""
        out = {}
        for k in JSON_KEYS:
            v = getattr(self, k)
            out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        return out

    def row(self) -> dict[str, Any]:
        """A flat dict for a DataFrame row."""
        d: dict[str, Any] = {"label": self.label}
        d.update(self.to_json_dict())
        d.update(timeouts=self.timeouts, connect_errors=self.connect_errors,
                 resets=self.resets, send_lag_p99_ms=self.send_lag_p99_ms,
                 send_lag_max_ms=self.send_lag_max_ms, late=self.late, valid=self.valid, warnings=len(self.warnings),
                 url=self.url)
        return d

    def quantile_ms(self, q: float) -> float:
        """Latency at quantile ``q`` (0..1) of the raw samples, exact."""
        return quantiles(self.samples_ms, (q,))[0]

    def summary(self) -> str:
        """A few readable lines (what the CLI prints)."""
        what = (f"open loop {self.rate:,.0f} req/s" if self.mode == "open"
                else f"closed loop {self.connections} conn")
        lines = [
            f"{self.label + ': ' if self.label else ''}{what}, {self.duration_s:g} s, {self.url}",
            f"  requests {self.requests:,}   rps {self.rps:,.0f}   client CPU "
            f"{self.client_cpu_pct:.0f}%",
            f"  p50 {self.p50_ms:.3f}  p90 {self.p90_ms:.3f}  p99 {self.p99_ms:.3f}  "
            f"p99.9 {self.p999_ms:.3f}  max {self.max_ms:.3f}  (ms)",
            f"  errors {self.errors} (timeouts {self.timeouts}, connect {self.connect_errors},"
            f" reset {self.resets})   non-2xx {self.non_2xx}   dropped {self.dropped}",
        ]
        if self.mode == "open":
            lag = self.send_lag_p99_ms
            lines.append(f"  send lag p99 {lag:.3f} ms, max {self.send_lag_max_ms:.3f} ms, "
                         f"late (> {LATE_MS:g} ms) {self.late:,}"
                         if lag is not None else "  send lag: no request sent")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        from html import escape
        cells = "".join(f"<td>{escape(_fmt_cell(v, k))}</td>" for k, v in self.to_json_dict().items())
        head = "".join(f"<th>{k}</th>" for k in JSON_KEYS)
        warn = "".join(f"<li>{escape(w)}</li>" for w in self.warnings)
        return (f"<b>{escape(self.label or self.url)}</b><table><tr>{head}</tr><tr>{cells}"
                f"</tr></table>" + (f"<ul>{warn}</ul>" if warn else ""))


def _fmt_cell(v: Any, column: str = "") -> str:
    from lessons.tables import formatter

    return formatter(column)(v)


def quantiles(samples: Any, qs: Sequence[float]) -> list[float]:
    import numpy as np

    if samples is None or len(samples) == 0:
        return [math.nan] * len(qs)
    return [float(v) for v in np.quantile(samples, list(qs), method="inverted_cdf")]



def table(runs: Sequence[Run] | Run) -> pd.DataFrame:
    """One row per run (label, the 15 bench keys, timeouts, send lag, late, valid...)."""
    import pandas as pd

    if isinstance(runs, Run):
        runs = [runs]
    return pd.DataFrame([r.row() for r in runs])
