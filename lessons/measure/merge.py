"""One ``Run`` from the results of every load process: raw samples concatenated (never
percentiles averaged), counters summed, the validity rules applied."""

from __future__ import annotations

import math
from typing import Any

from lessons.measure.result import Run, quantiles
from lessons.measure.spec import LoadSpec
from lessons.measure.validity import Facts, check

__all__ = ["merge"]

_COUNTS = ("ok", "non_2xx", "connect_errors", "resets", "timeouts", "dropped", "late",
           "scheduled", "peak_connections")


def merge(spec: LoadSpec, results: list[dict[str, Any]], *, label: str, url: str,
          plan: Any, cpu_delta: dict[int, float], elapsed: float) -> Run:
    """The run measured by the load processes' ``results`` (as ``child`` wrote them);
    ``cpu_delta``: every CPU's busy percent over the whole run, ``elapsed`` its seconds."""
    import numpy as np

    lat = np.concatenate([np.frombuffer(d["lat"], dtype=np.float64) for d in results]) * 1e3
    lag = np.concatenate([np.frombuffer(d["lag"], dtype=np.float64) for d in results]) * 1e3
    s = {k: sum(d[k] for d in results) for k in _COUNTS}
    duration = spec.duration
    p50, p90, p99, p999 = quantiles(lat, (0.5, 0.9, 0.99, 0.999))
    lag_p99 = quantiles(lag, (0.99,))[0] if spec.open and len(lag) else None
    lag_max = float(lag.max()) if spec.open and len(lag) else None
    facts = _facts(spec, results, s, plan, cpu_delta, elapsed, lag_p99)
    warnings, flags = check(facts)
    return Run(
        mode=spec.mode, connections=spec.connections if spec.mode == "closed"
        else int(s["peak_connections"]), rate=spec.rate, duration_s=duration,
        requests=int(facts.requests), rps=facts.responses / duration,
        p50_ms=p50, p90_ms=p90, p99_ms=p99, p999_ms=p999,
        max_ms=float(lat.max()) if len(lat) else math.nan,
        errors=int(facts.requests - facts.responses), timeouts=int(s["timeouts"]),
        non_2xx=int(s["non_2xx"]), dropped=int(s["dropped"]),
        client_cpu_pct=round(facts.cpu, 1),
        send_lag_p99_ms=lag_p99, late=int(s["late"]), send_lag_max_ms=lag_max,
        connect_errors=int(s["connect_errors"]), resets=int(s["resets"]),
        label=label, url=url,
        warnings=warnings, flags=flags, samples_ms=lat, meta=_meta(spec, results, s, facts,
                                                                    elapsed),
    )


def _facts(spec: LoadSpec, results: list[dict[str, Any]], s: dict[str, int], plan: Any,
           cpu_delta: dict[int, float], elapsed: float, lag_p99: float | None) -> Facts:
    cpu_each = [d["cpu_window_s"] / d["wall_window_s"] * 100 if d["wall_window_s"] > 0 else 0.0
                for d in results]
    cpu = float(sum(cpu_each))
    pinned = all(d["pinned"] for d in results) and plan.client is not None
    n_client = len(plan.client) if plan.client else 1
    busy, own = cpu_delta, 0.0
    if pinned:
        # Other programs on the client's core: its busy time beyond our own CPU use, in
        # the measured window (from /proc/stat in the load process) or else over the run.
        if results[0].get("cpu_busy_pct"):
            busy = {int(k): v for k, v in results[0]["cpu_busy_pct"].items()}
            own = cpu / n_client
        else:
            own = 100.0 * sum(d["cpu_total_s"] for d in results) / max(elapsed, 1e-9) / n_client
    return Facts(spec=spec, counts=s, cpu=cpu, cpu_each=cpu_each, lag_p99=lag_p99,
                 processes=len(results), plan=plan, pinned=pinned, own=own, busy=busy)


def _meta(spec: LoadSpec, results: list[dict[str, Any]], s: dict[str, int], facts: Facts,
          elapsed: float) -> dict[str, Any]:
    plan = facts.plan
    return {
        "processes": len(results), "pinned": facts.pinned, "cpu_plan": plan.note,
        "client_cpus": sorted(plan.client) if plan.client else None,
        "server_cpus": sorted(plan.server) if plan.server else None,
        "loop": results[0]["loop"], "precise_timer": results[0]["precise_timer"],
        "warmup_s": spec.warmup, "timeout_s": spec.timeout,
        "max_connections": spec.max_connections, "arrival": spec.arrival,
        "scheduled": s["scheduled"],
        "elapsed_s": elapsed, "paths": spec.paths,
        "cpu_busy_pct": facts.busy,
    }
