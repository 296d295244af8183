"""Runs as tables, honest comparisons, the SLO capacity search, and the results log.

* ``table(runs)``: one DataFrame row per ``Run``.
* ``compare({"A": url_a, "B": url_b}, path="/x")``: A,B,A,B... interleaved and repeated
  against servers the caller started; per label the median and min-max spread, and
  ratios against the baseline (the first label unless ``baseline=``).
* ``find_slo_capacity(url)``: the highest open-loop rate whose p99 (or another quantile)
  stays under the SLO with no error, non-2xx or dropped request.
* Every run is appended to ``config.results_dir()/runs.jsonl`` with the machine's facts;
  a failure to save only warns.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import platform
import time
import warnings as _warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessons import config
from lessons.load import Run, run

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "table", "compare", "acompare", "Comparison", "find_slo_capacity",
           "afind_slo_capacity", "Capacity", "machine_facts", "save", "saved"]

_PACKAGES = ("django", "asgiref", "gunicorn", "uvicorn", "uvicorn-worker", "granian",
             "hypercorn", "daphne", "psycopg", "psycopg-pool", "django-redis", "redis",
             "django-ninja", "djangorestframework", "httptools", "uvloop", "numpy",
             "pandas", "psutil")


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------

def table(runs: Sequence[Run] | Run) -> pd.DataFrame:
    """One row per run (label, the 15 bench keys, timeouts, send lag, late, valid...)."""
    import pandas as pd

    if isinstance(runs, Run):
        runs = [runs]
    return pd.DataFrame([r.row() for r in runs])


def _join(base: str, path: str) -> str:
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")


def _default(value: float | None, normal: float, quick: float) -> float:
    return value if value is not None else config.by_speed(normal, quick)


# --------------------------------------------------------------------------------------
# A/B comparisons
# --------------------------------------------------------------------------------------

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


def compare(
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
        raise ValueError("compare needs at least one target")
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    labels = list(targets)
    base = baseline if baseline is not None else labels[0]
    if base not in targets:
        raise ValueError(f"baseline {base!r} is not one of {labels}")
    duration = _default(duration, 3.0, 1.0)
    warmup = _default(warmup, 1.0, 0.5)
    runs: list[Run] = []
    for _ in range(repeats):
        for label in labels:
            runs.append(run(_join(targets[label], path), connections=connections, rate=rate,
                            duration=duration, warmup=warmup, timeout=timeout, paths=paths,
                            headers=headers, processes=processes, label=label,
                            progress=progress, save=save))
    return _comparison(runs, labels, base)


async def acompare(targets: Mapping[str, str], **kwargs: Any) -> Comparison:
    """``compare`` for ``await`` (runs in a thread; the caller's loop keeps running)."""
    return await asyncio.to_thread(functools.partial(compare, targets, **kwargs))


def _comparison(runs: list[Run], labels: list[str], base: str) -> Comparison:
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


# --------------------------------------------------------------------------------------
# Capacity under an SLO
# --------------------------------------------------------------------------------------

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
    duration = _default(duration, 2.0, 1.0)
    warmup = _default(warmup, 0.5, 0.5)
    floor = low if floor is None else floor
    target = _join(url, path)
    t0 = time.monotonic()
    probes: list[Run] = []
    passed: list[bool] = []
    client_limited = False
    q = f"p{quantile * 100:g}"

    def probe(rate: float) -> bool:
        nonlocal client_limited
        r = run(target, rate=rate, connections=connections, duration=max(duration, min_samples / rate),
                warmup=warmup, timeout=timeout, headers=headers, processes=processes,
                label=f"slo probe {rate:,.0f}/s", save=save)
        lat = r.quantile_ms(quantile)
        ok = (r.requests > 0 and lat < slo_ms and r.errors == 0 and r.non_2xx == 0
              and r.dropped == 0)
        if not ok and r.flags.get("client_saturated"):
            client_limited = True
        probes.append(r)
        passed.append(ok)
        if progress:
            why = "" if ok else " (" + ", ".join(
                w for w, bad in ((f"{q} {lat:.1f} ms", not lat < slo_ms),
                                 (f"{r.errors} errors", r.errors),
                                 (f"{r.non_2xx} non-2xx", r.non_2xx),
                                 (f"{r.dropped} dropped", r.dropped)) if bad) + ")"
            print(f"  {rate:>9,.0f} req/s: {q} {lat:7.2f} ms, p50 {r.p50_ms:6.2f} ms  "
                  f"{'pass' if ok else 'FAIL'}{why}", flush=True)
        return ok

    if progress:
        print(f"SLO capacity search: {q} < {slo_ms:g} ms at {target}", flush=True)
    steps = 0
    best = 0.0
    fail: float | None = None
    rate = low
    # Ramp: double until a probe fails or `high` passes.
    while steps < max_steps:
        steps += 1
        if probe(rate):
            best = rate
            if rate >= high:
                break
            rate = min(rate * 2, high)
        else:
            fail = rate
            break
    # The first probe failed: halve down to ``floor`` until one passes.
    while best == 0 and fail is not None and steps < max_steps and fail / 2 >= floor:
        steps += 1
        rate = fail / 2
        if probe(rate):
            best = rate
        else:
            fail = rate
    # Bisect between the best pass and the first failure.
    while fail is not None and best > 0 and steps < max_steps and fail / best > 1 + precision:
        steps += 1
        mid = math.sqrt(best * fail)
        if probe(mid):
            best = mid
        else:
            fail = mid
    warnings: list[str] = []
    if best == 0:
        lowest = min(r.rate or low for r in probes) if probes else low
        warnings.append(f"The SLO failed even at the lowest rate probed, {lowest:,.0f} req/s.")
    if client_limited:
        warnings.append("A failing probe ran out of client CPU: the load generator, not the "
                        "server, may have set this limit (try processes=2 or a faster "
                        "machine).")
    if fail is None and best >= high:
        warnings.append(f"The SLO held up to the highest rate probed ({high:,.0f} req/s): the "
                        "capacity is at least that.")
    elif fail is not None and best > 0 and fail / best > 1 + precision:
        warnings.append(f"The search stopped after {max_steps} probes: the capacity is "
                        f"between {best:,.0f} and {fail:,.0f} req/s.")
    invalid = sum(1 for r, ok in zip(probes, passed) if ok and not r.valid)
    if invalid:
        warnings.append(f"{invalid} passing probe(s) had validity warnings (see "
                        ".probes[i].warnings).")
    cap = Capacity(rate=best, slo_ms=slo_ms, quantile=quantile, probes=probes, passed=passed,
                   client_limited=client_limited, elapsed_s=time.monotonic() - t0,
                   url=target, warnings=warnings)
    if progress:
        print(str(cap), flush=True)
    return cap


async def afind_slo_capacity(url: str, **kwargs: Any) -> Capacity:
    """``find_slo_capacity`` for ``await`` (runs in a thread)."""
    return await asyncio.to_thread(functools.partial(find_slo_capacity, url, **kwargs))


# --------------------------------------------------------------------------------------
# Machine facts and the results log
# --------------------------------------------------------------------------------------

@functools.cache
def machine_facts() -> dict[str, Any]:
    """What a reader needs to interpret a number measured on this machine."""
    from importlib import metadata

    from lessons import cpus

    facts: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(cpus.available()),
        "os": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }
    try:
        import psutil

        facts["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001
        pass
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    facts["packages"] = versions
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                  capture_output=True, text=True, timeout=2).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or "unknown"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, keys -> str."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _record(r: Run) -> dict[str, Any]:
    meta = {k: v for k, v in r.meta.items() if k != "cpu_busy_pct"}
    return _clean({
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "label": r.label, "url": r.url, **r.to_json_dict(),
        "timeouts": r.timeouts, "send_lag_p99_ms": r.send_lag_p99_ms, "late": r.late,
        "valid": r.valid, "flags": r.flags, "warnings": r.warnings,
        "pinning": r.meta.get("cpu_plan"), "meta": meta, "machine": machine_facts(),
    })


def save(r: Run, *, directory: str | os.PathLike[str] | None = None) -> Path | None:
    """Append the run (without its raw samples) and the machine facts to
    ``runs.jsonl``.  Never raises: on failure it warns and returns None."""
    try:
        from lessons import config

        folder = Path(directory) if directory is not None else config.results_dir()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "runs.jsonl"
        line = json.dumps(_record(r), separators=(",", ":")) + "\n"
        with open(target, "a", encoding="utf-8") as f:
            f.write(line)
        return target
    except Exception as exc:  # noqa: BLE001 - saving must never fail a run
        _warnings.warn(f"run not saved ({type(exc).__name__}: {exc})", RuntimeWarning,
                       stacklevel=2)
        return None


def saved(directory: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Every saved run as a DataFrame (machine facts left out); empty if none."""
    import pandas as pd

    from lessons import config

    target = Path(directory) if directory is not None else config.results_dir()
    rows = []
    try:
        with open(target / "runs.jsonl", encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                rec.pop("machine", None)
                rec.pop("meta", None)
                rows.append(rec)
    except FileNotFoundError:
        pass
    return pd.DataFrame(rows)
