"""The audit's two figures (notebook 12, ``ProjectAudit.plot_endpoints`` and
``plot_waterfall``), drawn with ``lessons.plots`` so they look like every other notebook's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lessons.audit.timing import capacity_under

__all__ = ["endpoints_figure", "waterfall_figure"]


def endpoints_figure(rows: Sequence[dict[str, Any]], slo_ms: float) -> Any:
    """Three panels per endpoint and server: throughput at saturation, p99 at the
    fixed rate (bounds from order statistics, the SLO line) and SLO capacity."""
    import matplotlib.pyplot as plt

    from lessons import plots

    labels = [f"{r['path']} ({r['server']})" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.5 * len(rows) + 1.6), sharey=True, layout="constrained")
    # bars() inverts its y axis (first row on top); the three share one, inverted 3 times
    plots.bars(dict(zip(labels, (r["rps"] for r in rows))), ax=axes[0], unit="req/s",
               title="throughput at saturation (16 connections)")
    # p99 is None when the endpoint's throughput was under the fixed rate (nothing to
    # measure there); no upper bound (fewer than 299 samples): its whisker ends at 10 x the SLO
    p99 = [r["p99_ms"] if r.get("p99_ms") is not None else math.nan for r in rows]
    low = [p - r["p99_low_ms"] if r.get("p99_low_ms") is not None else 0.0 for p, r in zip(p99, rows)]
    high = [min(r["p99_high_ms"] if r.get("p99_high_ms") is not None else math.inf, max(10 * slo_ms, p)) - p
            for p, r in zip(p99, rows)]
    rate = rows[0].get("p99_rate", 0) if rows else 0
    spread = ([0.0 if math.isnan(p) else v for p, v in zip(p99, low)],
              [0.0 if math.isnan(p) else v for p, v in zip(p99, high)])
    ax = plots.bars(dict(zip(labels, p99)), ax=axes[1], unit="ms", slo_ms=slo_ms, spread=spread,
                    color="slategrey", title=f"p99 at {rate:g} req/s, with its bounds")
    for text in [t for t in ax.texts if t.get_text() == "nan"]:
        text.remove()
    for i, p in enumerate(p99):
        if math.isnan(p):
            ax.text(0.02, i, f"none: throughput under {rate:g} req/s", va="center", fontsize="small",
                    transform=ax.get_yaxis_transform())  # x in axes fraction, y in rows
    tops = [p + h for p, h in zip(p99, spread[1]) if not math.isnan(p)]
    ax.set_xlim(0, 1.15 * max([*tops, slo_ms]))
    ax = plots.bars(dict(zip(labels, (r["slo_capacity_rps"] for r in rows))), ax=axes[2], unit="req/s",
                    color="seagreen", title=f"SLO capacity (p99 < {slo_ms:g} ms)")
    for text, r in zip(ax.texts, rows):  # bars() wrote one value per bar, in order
        if under := capacity_under(r):
            text.set_text(under)
    ax.set_xlim(0, 1.3 * max([r["slo_capacity_rps"] or r.get("slo_capacity_not_shown_at_rps") or 1 for r in rows]))
    return fig


def waterfall_figure(steps: Sequence[dict[str, Any]], slo_ms: float) -> Any:
    """Each path's steps as two waterfalls (``plots.capacity_waterfall``, coloured by
    the measured change): the SLO capacity (held in every repeat), its black line
    running to the highest rate that did not hold the SLO in some repeat (the capacity
    lies in between), and the throughput at saturation (median of the repeats)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from lessons import plots

    measured = [s for s in steps if s.get("slo_capacity_rps") is not None]
    paths = list(dict.fromkeys(s["path"] for s in measured)) or [""]
    height = 0.45 * len(measured) + 1.8 * len(paths)
    fig, axes = plt.subplots(len(paths), 2, figsize=(15, height), sharey="row", layout="constrained",
                             squeeze=False)
    for (left, right), path in zip(axes, paths):
        steps = [s for s in measured if s["path"] == path]
        table = pd.DataFrame({
            "capacity (req/s)": [s["slo_capacity_rps"] for s in steps],
            "not shown at (req/s)": [s.get("slo_capacity_not_shown_at_rps") or math.inf for s in steps],
            "change": [s.get("change") or "none" for s in steps],
            "throughput (req/s)": [s.get("rps") or 0.0 for s in steps],
            "throughput change": [s.get("throughput_change") or "none" for s in steps],
        }, index=[s["step"] for s in steps])
        plots.capacity_waterfall(table, ax=left, title=f"--apply on {path}: SLO capacity (p99 < {slo_ms:g} ms)")
        plots.capacity_waterfall(table, ax=right, value="throughput (req/s)", low="throughput (req/s)",
                                 high="throughput (req/s)", change="throughput change",
                                 title=f"--apply on {path}: throughput at saturation (median)")
    return fig
