"""Plots of measured runs (matplotlib).  Each function draws on ``ax`` (a new figure
when None) and returns the Axes (``ax.figure`` is the Figure); nothing is shown or
saved, so they work headless (Agg) and in notebooks alike.

* ``percentiles(runs)``        latency by percentile, x on a 1/(1-p) log scale
* ``latency_vs_rate(capacity)`` p50/p99 against the offered rate, with the SLO line
* ``throughput(comparison)``   median req/s per label with min-max spread
* ``comparison(comparison)``   three panels: req/s, p50 and p99 per label (spread, SLO line)
* ``bars(values)``             any measured quantity by configuration (a Series or dict)
* ``waterfall(steps, values)`` cumulative changes, one bar per step
* ``capacity_waterfall(table)`` cumulative steps coloured by measured change (outside the
  repeats' spread), with each step's range
* ``lines(series)``            one line per label through measured {x: y} points
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lessons.measure.result import Run

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["percentiles", "latency_vs_rate", "throughput", "waterfall", "comparison", "bars",
           "capacity_waterfall", "lines", "SLO_MS"]

SLO_MS = 10.0
_TICKS = ((0.5, "50%"), (0.9, "90%"), (0.99, "99%"), (0.999, "99.9%"), (0.9999, "99.99%"),
          (0.99999, "99.999%"))


def _axes(ax: Axes | None, size: tuple[float, float] = (7.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _slo(ax: Axes, slo_ms: float | None) -> None:
    if slo_ms:
        ax.axhline(slo_ms, color="crimson", linestyle="--", linewidth=1,
                   label=f"SLO {slo_ms:g} ms", zorder=1)


def _runs_with_labels(data: Any) -> list[tuple[str, Run]]:
    """Run | [Run] | {label: Run} | Comparison | Capacity -> [(label, run)]."""
    if isinstance(data, Run):
        return [(data.label or data.url, data)]
    if isinstance(data, Mapping):
        return [(str(k), v) for k, v in data.items()]
    probes = getattr(data, "probes", None)
    if probes is not None:
        return [(r.label, r) for r in probes]
    runs = getattr(data, "runs", None)
    if runs is not None:
        return [(r.label, r) for r in runs]
    return [(r.label or r.url or f"run {i + 1}", r) for i, r in enumerate(data)]


def percentiles(
    runs: Run | Sequence[Run] | Mapping[str, Run] | Any,
    *,
    ax: Axes | None = None,
    slo_ms: float | None = SLO_MS,
    title: str | None = None,
    logy: bool = False,
    max_points: int = 600,
) -> Axes:
    """Latency (ms) by percentile for one or more runs: x = 1/(1-p) on a log scale,
    ticked 50%, 90%, 99%, 99.9%, 99.99%, so the tail gets the room it deserves.

    A Comparison draws every run, one colour per label.
    """
    import matplotlib as mpl
    import numpy as np

    ax = _axes(ax)
    pairs = _runs_with_labels(runs)
    palette = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    colours: dict[str, Any] = {}
    top = 1.0
    for label, r in pairs:
        samples = np.asarray(r.samples_ms if r.samples_ms is not None else [], dtype=float)
        if samples.size == 0:
            continue
        v = np.sort(samples)
        n = v.size
        # The value at rank i is the latency at percentile i/n (x = n/(n-i)); thin the
        # points on a log grid of x so a million samples stay a light line.
        x_all = n / (n - np.arange(n))
        if n > max_points:
            grid = np.unique(np.clip(np.round(n - n / np.geomspace(1, n, max_points)), 0,
                                     n - 1).astype(int))
            x, y = x_all[grid], v[grid]
        else:
            x, y = x_all, v
        top = max(top, float(x[-1]))
        shown = None if label in colours else label
        colour = colours.setdefault(label, palette[len(colours) % len(palette)])
        ax.plot(x, y, drawstyle="steps-post", linewidth=1.5, label=shown, color=colour)
    ax.set_xscale("log")
    ticks = [(1 / (1 - p), text) for p, text in _TICKS if 1 / (1 - p) <= top * 1.01]
    ax.set_xticks([1.0] + [t for t, _ in ticks], ["0%"] + [text for _, text in ticks])
    ax.minorticks_off()
    ax.set_xlim(1.0, max(top, 2.0))
    if logy:
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis)
    else:
        ax.set_ylim(bottom=0)
    _slo(ax, slo_ms)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title or "Latency by percentile")
    if pairs:
        ax.legend(fontsize="small")
    return ax


def latency_vs_rate(
    data: Any,
    *,
    ax: Axes | None = None,
    slo_ms: float | None = None,
    title: str | None = None,
    logy: bool = True,
) -> Axes:
    """p50 and p99 against the offered rate (open loop; a closed-loop run is placed at
    its achieved rate), from a Capacity or a list of runs, with the SLO line.  Probes
    that failed (SLO, errors or drops) are marked with a cross; a Capacity's answer is
    the dotted vertical line."""
    import numpy as np

    ax = _axes(ax)
    pairs = _runs_with_labels(data)
    passed = getattr(data, "passed", None)
    slo = slo_ms if slo_ms is not None else getattr(data, "slo_ms", SLO_MS)
    order = sorted(range(len(pairs)), key=lambda i: _offered(pairs[i][1]))
    x = np.array([_offered(pairs[i][1]) for i in order], dtype=float)
    p50 = np.array([pairs[i][1].p50_ms for i in order], dtype=float)
    p99 = np.array([pairs[i][1].p99_ms for i in order], dtype=float)
    ax.plot(x, p50, marker="o", markersize=4, label="p50")
    ax.plot(x, p99, marker="o", markersize=4, label="p99")
    if passed is not None:
        bad = [k for k, i in enumerate(order) if not passed[i]]
    else:
        bad = [k for k, i in enumerate(order)
               if pairs[i][1].errors or pairs[i][1].non_2xx or pairs[i][1].dropped]
    if bad:
        ax.scatter(x[bad], p99[bad], marker="x", color="black", zorder=3, s=40,
                   label="failed")
    cap = getattr(data, "rate", None)
    if passed is not None and cap:
        ax.axvline(cap, color="grey", linestyle=":", linewidth=1,
                   label=f"capacity {cap:,.0f} req/s")
    _slo(ax, slo)
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    if logy:
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis)
    ax.set_xlabel("offered rate (req/s)")
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "Latency vs load")
    ax.legend(fontsize="small")
    return ax


def _plain_log_axis(axis: Any) -> None:
    """Log-axis labels as plain numbers (100, 200, 500, 1,000), not 2x10^2."""
    from matplotlib.ticker import FuncFormatter

    def major(v: float, _: Any) -> str:
        return f"{v:,.0f}" if v >= 1 else f"{v:g}"

    def minor(v: float, _: Any) -> str:
        lead = f"{v:.0e}"[0]
        return major(v, _) if lead in "25" else ""

    axis.set_major_formatter(FuncFormatter(major))
    axis.set_minor_formatter(FuncFormatter(minor))


def _offered(r: Run) -> float:
    return float(r.rate) if r.rate else float(r.rps)


def throughput(
    data: Any,
    *,
    ax: Axes | None = None,
    metric: str = "rps",
    title: str | None = None,
) -> Axes:
    """Bars of the median ``metric`` (default req/s) per label, with the min-max spread
    of the repeats as error bars, from a Comparison (or a list of runs, grouped by
    label)."""
    import numpy as np

    ax = _axes(ax, (6.0, 3.5))
    pairs = _runs_with_labels(data)
    labels = list(getattr(data, "labels", None) or dict.fromkeys(lbl for lbl, _ in pairs))
    med, lo, hi = [], [], []
    for label in labels:
        vals = np.array([getattr(r, metric) for lbl, r in pairs if lbl == label], dtype=float)
        m = float(np.median(vals))
        med.append(m)
        lo.append(m - float(vals.min()))
        hi.append(float(vals.max()) - m)
    pos = np.arange(len(labels))
    bars = ax.bar(pos, med, yerr=[lo, hi], capsize=6, color="steelblue", alpha=0.85)
    for b, m in zip(bars, med):
        ax.annotate(f"{m:,.0f}" if m >= 100 else f"{m:.3g}", (b.get_x() + b.get_width() / 2, m),
                    xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                    fontsize="small")
    ax.set_xticks(pos, labels)
    ax.set_ylabel({"rps": "requests/s"}.get(metric, metric) + " (median, min-max)")
    ax.set_title(title or ("Throughput" if metric == "rps" else metric))
    ax.grid(True, axis="y", alpha=0.3)
    return ax


def waterfall(
    steps: Sequence[str],
    values: Sequence[float],
    *,
    ax: Axes | None = None,
    title: str | None = None,
    unit: str = "req/s",
) -> Axes:
    """Cumulative changes as a waterfall: one bar per step, from the previous step's value
    to this one's, green when it rose, red when it fell, grey when it did not move (within
    5%), with the value written at the end of each bar."""
    ax = _axes(ax, (9.0, 0.45 * len(steps) + 1.2))
    previous = 0.0
    for i, (step, value) in enumerate(zip(steps, values)):
        if i == 0:
            low, high, color = 0.0, value, "steelblue"
        else:
            low, high = sorted((previous, value))
            change = (value - previous) / previous if previous else (1.0 if value else 0.0)
            color = "grey" if abs(change) < 0.05 else ("seagreen" if value > previous else "crimson")
        ax.barh(i, max(high - low, 1e-9), left=low, color=color, height=0.6)
        ax.text(max(value, 0) , i, f" {value:,.0f}", va="center", fontsize=8)
        previous = value
    ax.set_yticks(range(len(steps)), list(steps), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


_UNITS = {"rps": "requests/s", "p50_ms": "p50 (ms)", "p99_ms": "p99 (ms)", "p90_ms": "p90 (ms)",
          "p999_ms": "p99.9 (ms)", "max_ms": "max (ms)"}


def comparison(data: Any, *, metrics: Sequence[str] = ("rps", "p50_ms", "p99_ms"),
               title: str | None = None, slo_ms: float | None = SLO_MS) -> Any:
    """One panel per metric (default throughput, p50 and p99), a horizontal bar per label:
    the median of the repeats with their min-max spread; latency panels carry the SLO
    line.  ``data`` is a Comparison (or runs grouped by label).  Returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    pairs = _runs_with_labels(data)
    labels = list(getattr(data, "labels", None) or dict.fromkeys(lbl for lbl, _ in pairs))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.45 * len(labels) + 1.4),
                             sharey=True, layout="constrained", squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        med, lo, hi = [], [], []
        for label in labels:
            vals = np.array([getattr(r, metric) for lbl, r in pairs if lbl == label], dtype=float)
            med.append(float(np.median(vals)))
            lo.append(med[-1] - float(vals.min()))
            hi.append(float(vals.max()) - med[-1])
        _hbars(ax, labels, med, (lo, hi), color="steelblue" if metric == "rps" else "slategrey")
        ax.set_xlabel(_UNITS.get(metric, metric) + ", median and min-max")
        if metric.endswith("_ms") and slo_ms:
            ax.axvline(slo_ms, color="crimson", linestyle="--", linewidth=1, label=f"SLO {slo_ms:g} ms")
            ax.legend(fontsize="small", loc="lower right")
    axes[0][0].invert_yaxis()
    if title:
        fig.suptitle(title)
    return fig


def bars(values: Any, *, ax: Axes | None = None, unit: str = "", title: str | None = None,
         spread: Any = None, slo_ms: float | None = None, color: str = "steelblue") -> Axes:
    """Horizontal bars of any measured quantity by configuration: ``values`` is a
    mapping or pandas Series (label -> number); ``spread`` an optional (low, high) pair of
    sequences (the distance below and above each value); ``slo_ms`` draws the SLO line
    (for latencies in ms)."""
    items = list(values.items())
    ax = _axes(ax, (7.0, 0.45 * len(items) + 1.2))
    _hbars(ax, [str(k) for k, _ in items], [float(v) for _, v in items], spread, color=color)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    if slo_ms:
        ax.axvline(slo_ms, color="crimson", linestyle="--", linewidth=1, label=f"SLO {slo_ms:g} ms")
        ax.legend(fontsize="small", loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def _hbars(ax: Axes, labels: Sequence[str], values: Sequence[float], spread: Any, *,
           color: str) -> None:
    pos = range(len(labels))
    ax.barh(pos, values, xerr=None if spread is None else [list(spread[0]), list(spread[1])],
            capsize=4, color=color, alpha=0.85, height=0.6)
    for i, v in enumerate(values):
        ax.annotate(f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}", (v, i), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize="small")
    ax.set_yticks(list(pos), list(labels), fontsize="small")
    ax.grid(True, axis="x", alpha=0.3)


_CHANGE_COLOURS = {"up": "seagreen", "down": "crimson", "none": "grey", "start": "steelblue",
                   "not re-measured": "lightgrey"}


def capacity_waterfall(table: Any, *, value: str = "capacity (req/s)", low: str = "capacity (req/s)",
                       high: str = "not shown at (req/s)", change: str = "change", ax: Axes | None = None,
                       title: str | None = None, unit: str = "req/s", labels: bool = True) -> Axes:
    """A waterfall whose colours come from measured changes, not from a threshold: one
    bar per step from the previous step's value to this one's, green ("up") or red
    ("down") only when the step's range over its repeats lies apart from the previous
    step's, grey otherwise, light grey for a step not re-measured; the black line is the
    step's range over the repeats.  ``table``: rows by step with the columns ``value``,
    ``low``, ``high`` and ``change`` (``lessons.measure.waterfall.Waterfall.table``)."""
    import math

    steps = list(table.index)
    ax = _axes(ax, (9.0, 0.42 * len(steps) + 1.4))
    previous = 0.0
    finite = [float(v) for v in list(table[high]) + list(table[value]) if math.isfinite(float(v))]
    top = max(finite + [1.0])
    for i, step in enumerate(steps):
        row = table.loc[step]
        v, what = float(row[value]), str(row[change])
        left, right = sorted((previous, v)) if i else (0.0, v)
        ax.barh(i, max(right - left, top * 0.004), left=left, height=0.6,
                color=_CHANGE_COLOURS.get(what, "grey"))
        lo, hi = float(row[low]), float(row[high])
        hi = hi if math.isfinite(hi) else top * 1.05
        ax.plot([lo, hi], [i, i], color="black", linewidth=1.2)
        shown = f"under {float(row[high]):,.0f}" if v == 0 and math.isfinite(float(row[high])) else f"{v:,.0f}"
        ax.text(max(v, hi), i, f"  {shown}", va="center", fontsize=8)
        previous = v
    ax.set_yticks(range(len(steps)), [s if len(s) <= 60 else s[:57] + "..." for s in steps] if labels
                  else [""] * len(steps), fontsize=8)
    if not ax.yaxis_inverted():  # a shared y axis is inverted once
        ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_xlim(0, top * 1.2)
    ax.grid(axis="x", alpha=0.3)
    from matplotlib.patches import Patch
    from matplotlib.transforms import offset_copy

    ax.legend(handles=[Patch(color=c, label=k) for k, c in _CHANGE_COLOURS.items() if k != "start"],
              fontsize="small", loc="upper center", ncol=4, bbox_to_anchor=(0.5, 0.0),
              # below the axis label (the bars fill the axes): 30 points under the axes
              bbox_transform=offset_copy(ax.transAxes, fig=ax.figure, y=-30, units="points"))
    if title:
        ax.set_title(title, fontsize="medium")
    return ax


def lines(series: Mapping[str, Mapping[Any, float]], *, ax: Axes | None = None, xlabel: str = "",
          ylabel: str = "", title: str | None = None, logx: bool = False) -> Axes:
    """One line with markers per label through its measured points: ``series`` maps a
    label to {x: y} (e.g. connections held after x requests served); x keys may be
    strings of numbers, as a notebook record keeps them."""
    ax = _axes(ax)
    for label, points in series.items():
        xy = sorted((float(x), float(y)) for x, y in points.items())
        ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", label=str(label))
    if logx:
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax
