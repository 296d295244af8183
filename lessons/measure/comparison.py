"""A/B comparisons: ``compare_urls({"A": url_a, "B": url_b}, path="/x")`` loads the targets
A,B,A,B... interleaved and repeated against servers the caller started; per label the
median and min-max spread, and ratios against the baseline (the first label unless
``baseline=``)."""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lessons.measure.launch import run
from lessons.measure.result import Run, table
from lessons.measure.spec import by_speed, join_url

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Comparison", "compare_urls", "acompare_urls", "summarise"]


_METRICS = ("rps", "p50_ms", "p99_ms", "p90_ms", "p999_ms", "max_ms")
_SPREAD = ("rps", "p50_ms", "p99_ms")   # these also get min, max and a ratio column


@dataclass
class Comparison:
    """Interleaved, repeated runs of several targets.

    ``summary`` has one row per label: the median of each metric over the repeats; for
    rps, p50 and p99 also the min and max (``rps_min``, ``p99_ms_max``...) and the ratio
    of the median to the baseline's (``rps_ratio``, ``p50_ratio``, ``p99_ratio``); summed
    error counts; whether every run was valid.
    """

    runs: list[Run]
    labels: list[str]
    baseline: str
    summary: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def of(self, label: str) -> list[Run]:
        """The runs of one label, in the order they ran."""
        return [r for r in self.runs if r.label == label]

    def median(self, metric: str, label: str) -> float:
        import numpy as np

        vals = [getattr(r, metric) for r in self.of(label)]
        if not vals:
            raise KeyError(f"no runs labelled {label!r}")
        return float(np.median(vals))

    def ratio(self, metric: str, a: str, b: str | None = None) -> float:
        """median(metric of a) / median(metric of b) (b: the baseline)."""
        den = self.median(metric, b or self.baseline)
        num = self.median(metric, a)
        return num / den if den else math.inf

    def table(self) -> pd.DataFrame:
        """Every run, one row each."""
        return table(self.runs)

    def show(self, *columns: str) -> Any:
        """The summary's ``columns`` (all when none), formatted for a reader, with the
        warnings as a caption."""
        from lessons.tables import readable

        table = self.summary[list(columns)] if columns else self.summary
        return readable(table, caption="; ".join(self.warnings) or None)

    def _repr_html_(self) -> str:
        from html import escape

        from lessons.tables import readable

        html = readable(self.summary).to_html()
        if self.warnings:
            html += "<ul>" + "".join(f"<li>{escape(w)}</li>" for w in self.warnings) + "</ul>"
        return html

    def __str__(self) -> str:
        text = self.summary.to_string()
        return text + "".join(f"\nwarning: {w}" for w in self.warnings)

    __repr__ = __str__


def compare_urls(
    targets: Mapping[str, str],
    *,
    path: str = "",
    repeats: int = 3,
    connections: int = 16,
    rate: float | None = None,
    duration: float | None = None,
    warmup: float | None = None,
    timeout: float = 2.0,
    paths: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    processes: int = 1,
    baseline: str | None = None,
    progress: bool = True,
    save: bool = True,
) -> Comparison:
    """Load each target (label -> base URL of a running server) in turn, A,B,A,B...,
    ``repeats`` times, with the same settings; ``path`` is appended to every base URL.

    ``duration`` defaults to 3 s (1 s with ``LAB_QUICK=1``), ``warmup`` to 1 s (0.5 s).
    """
    if not targets:
        raise ValueError("compare_urls needs at least one target")
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    labels = list(targets)
    base = baseline if baseline is not None else labels[0]
    if base not in targets:
        raise ValueError(f"baseline {base!r} is not one of {labels}")
    duration = by_speed(duration, 3.0, 1.0)
    warmup = by_speed(warmup, 1.0, 0.5)
    runs: list[Run] = []
    for _ in range(repeats):
        for label in labels:
            runs.append(run(join_url(targets[label], path), connections=connections, rate=rate,
                            duration=duration, warmup=warmup, timeout=timeout, paths=paths,
                            headers=headers, processes=processes, label=label,
                            progress=progress, save=save))
    return summarise(runs, labels, base)


async def acompare_urls(targets: Mapping[str, str], **kwargs: Any) -> Comparison:
    """``compare_urls`` for ``await`` (runs in a thread; the caller's loop keeps running)."""
    return await asyncio.to_thread(functools.partial(compare_urls, targets, **kwargs))


def summarise(runs: list[Run], labels: list[str], base: str) -> Comparison:
    """The ``Comparison`` of ``runs`` (labelled ``labels``) against ``base``."""
    import numpy as np
    import pandas as pd

    rows = []
    for label in labels:
        mine = [r for r in runs if r.label == label]
        row: dict[str, Any] = {"label": label, "runs": len(mine)}
        for m in _METRICS:
            vals = np.array([getattr(r, m) for r in mine], dtype=float)
            row[m] = float(np.median(vals))
            if m in _SPREAD:
                row[f"{m}_min"] = float(vals.min())
                row[f"{m}_max"] = float(vals.max())
                row[f"{m.removesuffix('_ms')}_ratio"] = math.nan
        for k in ("requests", "errors", "timeouts", "non_2xx", "dropped"):
            row[k] = int(sum(getattr(r, k) for r in mine))
        row["client_cpu_pct"] = float(np.median([r.client_cpu_pct for r in mine]))
        row["valid"] = all(r.valid for r in mine)
        rows.append(row)
    summary = pd.DataFrame(rows).set_index("label")
    for m in _SPREAD:
        den = summary.loc[base, m]
        summary[f"{m.removesuffix('_ms')}_ratio"] = summary[m] / den if den else math.nan
    warnings: list[str] = []
    for r in runs:
        for w in r.warnings:
            line = f"{r.label}: {w}"
            if line not in warnings:
                warnings.append(line)
    for label in labels:
        lo, hi = summary.loc[label, "rps_min"], summary.loc[label, "rps_max"]
        if lo > 0 and hi / lo > 1.5 and len([r for r in runs if r.label == label]) > 1:
            warnings.append(f"{label}: throughput varied from {lo:,.0f} to {hi:,.0f} req/s "
                            "between repeats: the machine is noisy, trust big ratios only.")
    return Comparison(runs=runs, labels=labels, baseline=base, summary=summary,
                      warnings=warnings)

