"""The load generator: keep-alive HTTP/1.1 from its own process, closed or open loop.

``run(url, ...)`` starts one (or more) load processes, pinned to the client CPU of
``cpus.plan()``, waits for them and returns a ``Run``.  ``await arun(...)`` is the same
for notebooks (it never blocks the kernel's event loop).

Closed loop (``rate=None``): ``connections`` connections; each sends its next request as
soon as the previous response is complete.  Throughput is what the server gives; a stall
delays only the few requests in flight, so the percentiles hide it (coordinated omission).

Open loop (``rate=R``): requests are due at fixed times ``1/R`` apart (or Poisson
arrivals) and each latency is *completion time - intended send time*, so a stall delays
every request that was due during it, as it does real users.  Requests go out on a pool of
connections that grows on demand up to ``max_connections``; a request that is due while no
connection is free waits for one (its latency still counts from its intended time).

What is counted, per measured request (the ones due in the window after the warm-up):

* ``requests``   every measured request that finished: a response (any status), an error
  or a timeout.  ``rps`` is responses (any status) per second of the measured window.
* ``errors``     requests without a usable response, *timeouts included*; the three kinds
  are also counted apart: ``connect_errors`` (no connection could be opened: refused or
  timed out; in a closed loop every failed attempt in the window counts once),
  ``resets`` (the connection closed or reset before a complete response, or the response
  could not be parsed) and ``timeouts`` (no complete response ``timeout`` seconds after
  the (intended) send time; each timeout is also a latency sample equal to ``timeout``).
* ``non_2xx``    responses whose status is not 2xx (they are latency samples too).
* ``dropped``    open loop only: requests never sent, because all ``max_connections``
  were busy and ``max_connections`` more were already waiting, or because no connection
  became free within ``timeout`` of the intended time.  They are not latency samples, so
  any drop makes the run invalid.
* ``late``       open loop only: requests sent more than ``LATE_MS`` (1 ms) after their
  intended time (short of client CPU, or waiting for a connection).  ``send_lag_p99_ms``
  is the 99th percentile of that lag; above ``LAG_LIMIT_MS`` (2 ms, a fifth of a 10 ms
  SLO) the run is flagged ``send_lag_high`` and is not ``valid``.

Flags (``Run.flags``) and ``Run.warnings``: ``client_saturated`` (the load process used
more than 85% of its core), ``send_lag_high``, ``machine_busy`` (other programs used more
than 25% of the client's core, or the CPUs outside the server and client sets were more
than 80% busy), ``not_pinned``.  ``Run.valid`` is False for a saturated client, a high
send lag, any dropped request or no request at all; a busy machine and no pinning only
warn (more noise, not a wrong measurement).

Percentiles are exact, from every raw sample (numpy), concatenated across processes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import random
import sys
import tempfile
import time
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Run", "run", "arun", "LATE_MS", "LAG_LIMIT_MS", "SATURATED_PCT",
           "MAX_CONNECTIONS"]

LATE_MS = 1.0           # a request sent more than this after its intended time is "late"
LAG_LIMIT_MS = 2.0      # send-lag p99 above this (a fifth of a 10 ms SLO) flags the run
SATURATED_PCT = 85.0    # client CPU above this (percent of one core): the client is the limit
BUSY_PCT = 25.0         # others' use of the client's CPU above this: the machine was busy
MAX_CONNECTIONS = 256   # default bound of the open-loop connection pool
_MARGIN_S = 4.0         # start-up of the load process + writing its result

_JSON_KEYS = ("mode", "connections", "rate", "duration_s", "requests", "rps", "p50_ms",
              "p90_ms", "p99_ms", "p999_ms", "max_ms", "errors", "non_2xx", "dropped",
              "client_cpu_pct")


# --------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------

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
        for k in _JSON_KEYS:
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
        return _quantiles(self.samples_ms, (q,))[0]

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
        head = "".join(f"<th>{k}</th>" for k in _JSON_KEYS)
        warn = "".join(f"<li>{escape(w)}</li>" for w in self.warnings)
        return (f"<b>{escape(self.label or self.url)}</b><table><tr>{head}</tr><tr>{cells}"
                f"</tr></table>" + (f"<ul>{warn}</ul>" if warn else ""))


def _fmt_cell(v: Any, column: str = "") -> str:
    from lessons.tables import formatter

    return formatter(column)(v)


def _quantiles(samples: Any, qs: Sequence[float]) -> list[float]:
    import numpy as np

    if samples is None or len(samples) == 0:
        return [math.nan] * len(qs)
    return [float(v) for v in np.quantile(samples, list(qs), method="inverted_cdf")]


# --------------------------------------------------------------------------------------
# The public entry points (parent side)
# --------------------------------------------------------------------------------------

def run(
    url: str,
    *,
    connections: int = 16,
    rate: float | None = None,
    duration: float = 5.0,
    warmup: float = 1.0,
    timeout: float = 2.0,
    paths: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    processes: int = 1,
    label: str = "",
    max_connections: int = MAX_CONNECTIONS,
    arrival: str = "uniform",
    progress: bool | None = None,
    save: bool = True,
) -> Run:
    """Load ``url`` from separate process(es) and return the measured ``Run``.

    ``rate=None``: closed loop with ``connections`` connections.  ``rate=R``: open loop at
    R requests/s in total, starting with ``connections`` open connections and growing the
    pool up to ``max_connections``.  ``paths`` (cycled) replaces the URL's path; ``headers``
    are added to every request.  ``warmup`` seconds of load come first and are not
    measured.  The call returns within ``warmup + duration + timeout`` plus a few seconds
    of process start-up, whatever the server does.  ``arrival="poisson"`` draws
    exponential gaps instead of uniform ones.  ``progress`` prints one line when the run
    starts and ends (None: only for runs of 10 s or more).  ``save`` appends the run to
    ``config.results_dir()`` with the machine's facts.
    """
    if progress is None:
        progress = warmup + duration >= 10.0
    spec = _spec(url, connections, rate, duration, warmup, timeout, paths, headers,
                 processes, max_connections, arrival)
    from lessons import cpus as _cpus

    plan = _cpus.plan()
    mode = spec["mode"]
    if progress:
        what = f"{rate:,.0f} req/s" if rate is not None else f"{connections} conn"
        print(f"{label or 'load'}: {mode} loop {what}, {warmup:g}+{duration:g} s ...",
              end="", flush=True)
    results, elapsed, cpu_delta = _run_workers(spec, plan, processes)
    r = _merge(spec, results, label=label, url=url, plan=plan, cpu_delta=cpu_delta,
               elapsed=elapsed)
    if progress:
        print(f" {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms"
              + ("" if r.valid else "  (invalid: see warnings)"), flush=True)
    if save:
        try:
            from lessons import results as _results

            _results.save(r)
        except Exception as exc:  # noqa: BLE001 - saving must never fail a run
            import warnings

            warnings.warn(f"run not saved: {exc}", RuntimeWarning, stacklevel=2)
    return r


async def arun(url: str, **options: Any) -> Run:
    """``run`` for ``await`` (notebook top-level await), with the same arguments: it runs
    in a thread, so the caller's event loop keeps serving while the load process works."""
    return await asyncio.to_thread(functools.partial(run, url, **options))


def _spec(url: str, connections: int, rate: float | None, duration: float, warmup: float,
          timeout: float, paths: Sequence[str] | None, headers: Mapping[str, str] | None,
          processes: int, max_connections: int, arrival: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs can be loaded, not {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    if connections < 1:
        raise ValueError("connections must be >= 1")
    if rate is not None and not rate > 0:
        raise ValueError("rate must be > 0 (or None for a closed loop)")
    if not duration > 0 or warmup < 0 or not timeout > 0:
        raise ValueError("duration and timeout must be > 0 and warmup >= 0")
    if processes < 1:
        raise ValueError("processes must be >= 1")
    if rate is None and connections < processes:
        raise ValueError("a closed loop needs at least one connection per process")
    if arrival not in ("uniform", "poisson"):
        raise ValueError("arrival is 'uniform' or 'poisson'")
    if max_connections < 1:
        raise ValueError("max_connections must be >= 1")
    base_path = parts.path or "/"
    if parts.query:
        base_path += "?" + parts.query
    plist = list(paths) if paths else [base_path]
    for p in plist:
        if not p.startswith("/"):
            raise ValueError(f"paths must start with '/': {p!r}")
    host = parts.hostname
    port = parts.port or 80
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    if "host" not in {k.lower() for k in (headers or {})}:
        extra = f"Host: {host_header}\r\n" + extra
    reqs = [f"GET {p} HTTP/1.1\r\n{extra}User-Agent: lessons-load\r\n\r\n" for p in plist]
    if not all(r.isascii() for r in reqs) or any(c in p for p in plist for c in " \r\n"):
        raise ValueError("paths and headers must be ASCII, paths without spaces "
                         "(percent-encode the rest)")
    return {
        "host": host, "port": port, "requests": reqs,
        "mode": "closed" if rate is None else "open",
        "connections": int(connections), "rate": None if rate is None else float(rate),
        "duration": float(duration), "warmup": float(warmup), "timeout": float(timeout),
        "max_connections": int(max_connections), "arrival": arrival,
    }


def _split(total: int, n: int) -> list[int]:
    return [total // n + (1 if k < total % n else 0) for k in range(n)]


def _run_workers(spec: dict[str, Any], plan: Any, processes: int
                 ) -> tuple[list[dict[str, Any]], float, dict[int, float]]:
    """Start the load processes, wait for them (never past the time bound), read their
    results; also the busy percent of every CPU over the run."""
    import psutil

    from lessons import config, procs

    tmp = Path(tempfile.mkdtemp(prefix="lab-load-"))
    conns = _split(spec["connections"], processes)
    maxc = _split(max(spec["max_connections"], processes), processes)
    workers = []
    before = psutil.cpu_times(percpu=True)
    t_start = time.monotonic()
    try:
        for k in range(processes):
            wspec = dict(spec, connections=max(1, conns[k]), max_connections=maxc[k],
                         out=str(tmp / f"w{k}"), seed=k)
            if spec["rate"] is not None:
                wspec["rate"] = spec["rate"] / processes
            (tmp / f"w{k}.spec.json").write_text(json.dumps(wspec))
            workers.append(procs.spawn(
                [sys.executable, "-m", "lessons.load", str(tmp / f"w{k}.spec.json")],
                cwd=config.REPO, log=tmp / f"w{k}.log", cpus=plan.client))
        deadline = t_start + spec["warmup"] + spec["duration"] + spec["timeout"] + \
            _MARGIN_S + 0.5 * processes
        hung = []
        for k, p in enumerate(workers):
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - TimeoutExpired: it is stopped below
                hung.append(k)
        elapsed = time.monotonic() - t_start
        after = psutil.cpu_times(percpu=True)
        for p in workers:
            procs.stop(p, timeout=2.0)
        results = []
        for k, p in enumerate(workers):
            res = tmp / f"w{k}.json"
            if k in hung or p.returncode != 0 or not res.exists():
                log = (tmp / f"w{k}.log").read_text(errors="replace")[-2000:]
                why = "did not finish in time" if k in hung else f"exited with {p.returncode}"
                raise RuntimeError(f"load process {k} {why}:\n{log}")
            d = json.loads(res.read_text())
            d["lat"] = (tmp / f"w{k}.lat").read_bytes()
            d["lag"] = (tmp / f"w{k}.lag").read_bytes()
            results.append(d)
    finally:
        for p in workers:
            if procs.alive(p):
                procs.stop(p, timeout=2.0)
        for f in tmp.iterdir():
            f.unlink(missing_ok=True)
        tmp.rmdir()
    busy = {}
    for cpu, (b, a) in enumerate(zip(before, after)):
        total = sum(a) - sum(b)
        idle = (a.idle - b.idle) + (getattr(a, "iowait", 0) - getattr(b, "iowait", 0))
        busy[cpu] = 100.0 * (1 - idle / total) if total > 0 else 0.0
    return results, elapsed, busy


def _merge(spec: dict[str, Any], results: list[dict[str, Any]], *, label: str, url: str,
           plan: Any, cpu_delta: dict[int, float], elapsed: float) -> Run:
    import numpy as np

    lat = np.concatenate([np.frombuffer(d["lat"], dtype=np.float64) for d in results]) * 1e3
    lag = np.concatenate([np.frombuffer(d["lag"], dtype=np.float64) for d in results]) * 1e3
    s = {k: sum(d[k] for d in results) for k in
         ("ok", "non_2xx", "connect_errors", "resets", "timeouts", "dropped", "late",
          "scheduled",
          "peak_connections")}
    duration = spec["duration"]
    responses = s["ok"] + s["non_2xx"]
    errors = s["connect_errors"] + s["resets"] + s["timeouts"]
    requests = responses + errors
    p50, p90, p99, p999 = _quantiles(lat, (0.5, 0.9, 0.99, 0.999))
    mx = float(lat.max()) if len(lat) else math.nan
    cpu_each = [d["cpu_window_s"] / d["wall_window_s"] * 100 if d["wall_window_s"] > 0 else 0.0
                for d in results]
    cpu = float(sum(cpu_each))
    open_loop = spec["mode"] == "open"
    lag_p99 = _quantiles(lag, (0.99,))[0] if open_loop and len(lag) else None
    lag_max = float(lag.max()) if open_loop and len(lag) else None

    warnings: list[str] = []
    flags: dict[str, bool] = {}
    pinned = all(d["pinned"] for d in results) and plan.client is not None
    n_client = len(plan.client) if plan.client else 1
    flags["client_saturated"] = (max(cpu_each) > SATURATED_PCT
                                 or cpu > SATURATED_PCT * n_client)
    flags["send_lag_high"] = bool(lag_p99 is not None and lag_p99 > LAG_LIMIT_MS)
    flags["not_pinned"] = not pinned
    flags["machine_busy"] = False
    if requests == 0:
        warnings.append("No request finished: is the server running at that address?")
    if flags["client_saturated"]:
        warnings.append(f"The load generator used {cpu:.0f}% of a core: it may have been "
                        "the bottleneck, so the server could be faster than measured.")
    if flags["send_lag_high"]:
        warnings.append(f"Requests went out late (p99 send lag {lag_p99:.2f} ms, "
                        f"{s['late']:,} more than {LATE_MS:g} ms late): the client was "
                        "short of CPU or of free connections; latencies still count from "
                        "the intended send time.")
    if s["dropped"]:
        warnings.append(f"{s['dropped']:,} requests were dropped (never sent: no free "
                        "connection in time), so the percentiles understate the latency.")
    if s["timeouts"]:
        warnings.append(f"{s['timeouts']:,} requests timed out after {spec['timeout']:g} s "
                        "(counted as errors, recorded at the timeout).")
    if s["connect_errors"]:
        warnings.append(f"{s['connect_errors']:,} requests failed because no connection "
                        "could be opened (refused or timed out).")
    if s["resets"]:
        warnings.append(f"{s['resets']:,} requests failed on an open connection (closed "
                        "or reset before a complete response, or an unreadable response).")
    if s["non_2xx"]:
        warnings.append(f"{s['non_2xx']:,} responses had a non-2xx status.")
    if open_loop and requests and responses < 0.9 * spec["rate"] * duration:
        warnings.append(f"The server answered {responses / duration:,.0f} req/s of the "
                        f"{spec['rate']:,.0f} req/s offered.")
    if pinned and len(results) > n_client:
        warnings.append(f"{len(results)} load processes shared {n_client} client CPU(s): "
                        "more processes than cores only add contention.")
    if not pinned:
        warnings.append("The load generator was not pinned to its own CPU "
                        f"({plan.note}).")
    else:
        # Other programs on the client's core: its busy time beyond our own CPU use, in
        # the measured window (from /proc/stat in the load process) or else over the run.
        if results[0].get("cpu_busy_pct"):
            cpu_delta = {int(k): v for k, v in results[0]["cpu_busy_pct"].items()}
            own = cpu / n_client
        else:
            own = 100.0 * sum(d["cpu_total_s"] for d in results) / max(elapsed, 1e-9) / n_client
        client_busy = sum(cpu_delta.get(c, 0.0) for c in plan.client) / n_client
        others = sorted(set(cpu_delta) - set(plan.client) - set(plan.server or ()))
        other_busy = (sum(cpu_delta[c] for c in others) / len(others)) if others else 0.0
        if client_busy - own > BUSY_PCT:
            flags["machine_busy"] = True
            warnings.append(f"Other processes (a database, the notebook, other programs) "
                            f"used about {client_busy - own:.0f}% of the load generator's "
                            "CPU during the run: expect noise.")
        elif others and other_busy > 80.0:
            flags["machine_busy"] = True
            warnings.append(f"The other CPUs were {other_busy:.0f}% busy during the run "
                            "(other programs, or the database under load): expect noise.")
    if spec["mode"] == "closed":
        conns = spec["connections"]
    else:
        conns = int(s["peak_connections"])
    meta = {
        "processes": len(results), "pinned": pinned, "cpu_plan": plan.note,
        "client_cpus": sorted(plan.client) if plan.client else None,
        "server_cpus": sorted(plan.server) if plan.server else None,
        "loop": results[0]["loop"], "precise_timer": results[0]["precise_timer"],
        "warmup_s": spec["warmup"], "timeout_s": spec["timeout"],
        "max_connections": spec["max_connections"], "arrival": spec["arrival"],
        "scheduled": s["scheduled"],
        "elapsed_s": elapsed, "paths": [r.split(" ", 2)[1] for r in spec["requests"]],
        "cpu_busy_pct": cpu_delta,
    }
    return Run(
        mode=spec["mode"], connections=conns, rate=spec["rate"], duration_s=duration,
        requests=int(requests), rps=responses / duration,
        p50_ms=p50, p90_ms=p90, p99_ms=p99, p999_ms=p999, max_ms=mx,
        errors=int(errors), timeouts=int(s["timeouts"]), non_2xx=int(s["non_2xx"]),
        dropped=int(s["dropped"]), client_cpu_pct=round(cpu, 1),
        send_lag_p99_ms=lag_p99, late=int(s["late"]), send_lag_max_ms=lag_max,
        connect_errors=int(s["connect_errors"]), resets=int(s["resets"]),
        label=label, url=url,
        warnings=warnings, flags=flags, samples_ms=lat, meta=meta,
    )


# --------------------------------------------------------------------------------------
# The load process (worker side): plain asyncio (+uvloop), httptools, no numpy
# --------------------------------------------------------------------------------------

def _precise_timer() -> Any:
    """A timerfd (Linux) for sub-millisecond wake-ups: event-loop timers have 1 ms
    resolution, which would add up to 1 ms of send lag to every open-loop request."""
    if not sys.platform.startswith("linux"):
        return None
    if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)

        class _Ts(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        class _Its(ctypes.Structure):
            _fields_ = [("it_interval", _Ts), ("it_value", _Ts)]

        fd = libc.timerfd_create(1, 0o4000 | 0o2000000)  # MONOTONIC, NONBLOCK|CLOEXEC
        if fd < 0:
            return None
        libc.prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK 1 ns: wake when asked
        settime = libc.timerfd_settime
        spec = _Its()
        ref = ctypes.byref(spec)

        def arm(t: float) -> None:
            sec = int(t)
            spec.it_value.tv_sec = sec
            spec.it_value.tv_nsec = int((t - sec) * 1e9)
            settime(fd, 1, ref, None)  # TFD_TIMER_ABSTIME

        return fd, arm
    except Exception:  # noqa: BLE001 - fall back to the loop's timers
        return None


class _Conn(asyncio.Protocol):
    __slots__ = ("gen", "parser", "transport", "busy", "dead", "intended", "measured")

    def __init__(self, gen: _Gen) -> None:
        import httptools

        self.gen = gen
        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.busy = False
        self.dead = False
        self.intended = 0.0
        self.measured = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:  # noqa: BLE001 - httptools.HttpParserError and friends
            self.gen.failed(self)

    def on_message_complete(self) -> None:
        self.gen.response(self, self.parser.get_status_code(), self.parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class _Gen:
    """One load process: the schedule, the connections and the counters."""

    def __init__(self, spec: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clock = time.perf_counter
        self.host, self.port = spec["host"], spec["port"]
        self.reqs = [r.encode("latin-1") for r in spec["requests"]]
        self.req0 = self.reqs[0]
        self.nreq = len(self.reqs)
        self.ri = 0
        self.open = spec["mode"] == "open"
        self.n_conns = spec["connections"]
        self.max_conns = spec["max_connections"]
        self.max_backlog = self.max_conns
        self.rate = spec["rate"]
        self.timeout = spec["timeout"]
        self.poisson = spec["arrival"] == "poisson"
        self.rng = random.Random(spec.get("seed", 0))
        self.late_s = LATE_MS / 1e3
        self.lat = array("d")
        self.lag = array("d")
        self.ok = self.non_2xx = self.connect_errors = self.resets = self.timeouts = 0
        self.dropped = self.late = self.scheduled = 0
        self.pool: set[_Conn] = set()
        self.free: list[_Conn] = []
        self.backlog: deque[float] = deque()
        self.connecting = 0
        self.inflight = 0
        self.peak = 0
        self.stopping = False
        self.done: asyncio.Future[None] = loop.create_future()
        self.t0 = self.clock()
        self.ws = self.t0 + spec["warmup"]
        self.we = self.ws + spec["duration"]
        self.hard_end = self.we + self.timeout
        self.cpu_ws = self.cpu_we = 0.0
        self.wall_ws = self.wall_we = 0.0
        self.stat_ws: dict[int, tuple[int, int]] | None = None
        self.stat_we: dict[int, tuple[int, int]] | None = None
        self.timer = _precise_timer() if self.open else None
        self.timer_handle: Any = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        loop, now = self.loop, self.clock()
        loop.call_at(loop.time() + (self.ws - now), self._window_start)
        loop.call_at(loop.time() + (self.we - now), self._window_end)
        self.check_every = max(0.005, min(0.05, self.timeout / 10))
        loop.call_later(self.check_every, self._check)
        if self.open:
            for _ in range(min(self.n_conns, self.max_conns)):
                self._connect()
            self.i = 0
            self.next_t = self.t0
            if self.timer is not None:
                fd, self.arm = self.timer
                loop.add_reader(fd, self._timer_fired)
            self._tick()
        else:
            for _ in range(self.n_conns):
                self._connect()

    def _window_start(self) -> None:
        self.cpu_ws, self.wall_ws = time.process_time(), self.clock()
        self.stat_ws = _proc_stat()

    def _window_end(self) -> None:
        self.cpu_we, self.wall_we = time.process_time(), self.clock()
        self.stat_we = _proc_stat()

    def _finish(self) -> None:
        if self.done.done():
            return
        self.stopping = True
        ws, to = self.ws, self.timeout
        for c in list(self.pool):
            if c.busy and c.measured:   # past its deadline by now
                self.timeouts += 1
                self.lat.append(to)
            c.busy = False
            c.dead = True
            if c.transport is not None:
                c.transport.abort()
        self.pool.clear()
        self.free.clear()
        for intended in self.backlog:
            if intended >= ws:
                self.dropped += 1
        self.backlog.clear()
        self.inflight = 0
        if self.timer is not None:
            self.loop.remove_reader(self.timer[0])
        if not self.wall_we:
            self._window_end()
        self.done.set_result(None)

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> None:
        self.connecting += 1
        self.loop.create_task(self._connect_one())

    async def _connect_one(self) -> None:
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Conn(self), self.host, self.port),
                self.timeout)
        except (OSError, asyncio.TimeoutError):
            self.connecting -= 1
            if self.stopping:
                return
            if self.open:
                if self.backlog:        # the request that wanted this connection fails
                    intended = self.backlog.popleft()
                    if intended >= self.ws:
                        self.connect_errors += 1
                    self._replace()
                return
            if self.ws <= self.clock() < self.we:
                self.connect_errors += 1
            await asyncio.sleep(0.01)   # a refused connection: do not spin
            if self.clock() < self.we and not self.stopping:
                self._connect()
            return
        self.connecting -= 1
        if self.stopping:
            conn.transport.abort()
            return
        self.pool.add(conn)
        n = len(self.pool)
        if n > self.peak:
            self.peak = n
        now = self.clock()
        if self.open:
            self._next_for(conn, now)
        elif now < self.we:
            self._send(conn, now, now)
        else:
            self._drop_conn(conn)

    def _drop_conn(self, conn: _Conn, abort: bool = False) -> None:
        conn.dead = True
        self.pool.discard(conn)
        if conn.transport is not None:
            if abort:
                conn.transport.abort()
            else:
                conn.transport.close()

    def _replace(self) -> None:
        """A connection is gone: closed loop reconnects its slot, open loop opens what the
        waiting requests need."""
        if self.stopping:
            return
        if not self.open:
            if self.clock() < self.we:
                self._connect()
            return
        backlog = self.backlog
        while (backlog and self.connecting < len(backlog)
               and len(self.pool) + self.connecting < self.max_conns):
            self._connect()

    # -- requests ----------------------------------------------------------------------

    def _send(self, conn: _Conn, intended: float, now: float) -> None:
        conn.intended = intended
        conn.busy = True
        self.inflight += 1
        if intended >= self.ws:
            conn.measured = True
            if self.open:
                lag = now - intended
                self.lag.append(lag)
                if lag > self.late_s:
                    self.late += 1
            else:
                self.scheduled += 1
        else:
            conn.measured = False
        if self.nreq == 1:
            conn.transport.write(self.req0)
        else:
            conn.transport.write(self.reqs[self.ri % self.nreq])
            self.ri += 1

    def response(self, conn: _Conn, status: int, keep: bool) -> None:
        now = self.clock()
        if not conn.busy:
            return  # a response nobody asked for (or after a timeout): ignore
        conn.busy = False
        self.inflight -= 1
        if conn.measured:
            self.lat.append(now - conn.intended)
            if 200 <= status < 300:
                self.ok += 1
            else:
                self.non_2xx += 1
        if not keep:
            self._drop_conn(conn)
            self._replace()
        elif self.open:
            self._next_for(conn, now)
        elif now < self.we:
            self._send(conn, now, now)
        if now >= self.we and not self.inflight and not self.backlog \
                and (not self.open or self.sched_done):
            self._finish()

    def failed(self, conn: _Conn) -> None:
        """An unreadable response: count it and close the connection."""
        if conn.dead:
            return
        if conn.busy:
            self._error(conn)
        else:
            self._drop_conn(conn)
            self._replace()
        if conn.transport is not None:
            conn.transport.abort()

    def lost(self, conn: _Conn) -> None:
        if conn.dead:
            return
        conn.dead = True
        self.pool.discard(conn)
        if conn in self.free:
            self.free.remove(conn)
        if conn.busy:
            self._error(conn)
        else:
            self._replace()   # an idle connection closed by the server

    def _error(self, conn: _Conn) -> None:
        conn.busy = False
        conn.dead = True
        self.pool.discard(conn)
        self.inflight -= 1
        if conn.measured:
            self.resets += 1
        self._replace()

    def _next_for(self, conn: _Conn, now: float) -> None:
        """A connection is free: give it the oldest waiting request, or park it."""
        backlog = self.backlog
        while backlog:
            intended = backlog.popleft()
            if now - intended >= self.timeout:
                if intended >= self.ws:
                    self.dropped += 1
                continue
            self._send(conn, intended, now)
            return
        self.free.append(conn)

    # -- the open-loop schedule --------------------------------------------------------

    sched_done = False

    def _timer_fired(self) -> None:
        try:
            os.read(self.timer[0], 8)
        except BlockingIOError:
            return
        self._tick()

    def _loop_timer(self) -> None:
        self.timer_handle = None
        self._tick()

    def _tick(self) -> None:
        now = self.clock()
        we, ws = self.we, self.ws
        while self.next_t <= now + 20e-6:
            t = self.next_t
            if t >= we:
                self.sched_done = True
                return
            if t >= ws:
                self.scheduled += 1
            self._dispatch(t, now)
            self.i += 1
            if self.poisson:
                self.next_t = t + self.rng.expovariate(self.rate)
            else:
                self.next_t = self.t0 + self.i / self.rate
        if self.next_t >= we:
            self.sched_done = True
            return
        if self.timer is not None:
            self.arm(self.next_t)
        elif self.timer_handle is None:
            self.timer_handle = self.loop.call_at(
                self.loop.time() + (self.next_t - now), self._loop_timer)

    def _dispatch(self, intended: float, now: float) -> None:
        if self.free:
            self._send(self.free.pop(), intended, now)
            return
        backlog = self.backlog
        if len(backlog) >= self.max_backlog:
            if intended >= self.ws:
                self.dropped += 1
            return
        backlog.append(intended)
        if self.connecting < len(backlog) and len(self.pool) + self.connecting < self.max_conns:
            self._connect()

    # -- timeouts and the end ----------------------------------------------------------

    def _check(self) -> None:
        if self.done.done():
            return
        now = self.clock()
        to = self.timeout
        for c in list(self.pool):
            if c.busy and now - c.intended >= to:
                c.busy = False
                self.inflight -= 1
                if c.measured:
                    self.timeouts += 1
                    self.lat.append(to)
                self._drop_conn(c, abort=True)
                self._replace()
        backlog, ws = self.backlog, self.ws
        while backlog and now - backlog[0] >= to:
            if backlog.popleft() >= ws:
                self.dropped += 1
        if now >= self.hard_end or (now >= self.we and not self.inflight and not backlog
                                    and (not self.open or self.sched_done)):
            self._finish()
            return
        self.loop.call_later(self.check_every, self._check)

    def result(self) -> dict[str, Any]:
        busy = None
        if self.stat_ws and self.stat_we:
            busy = {}
            for cpu, (b1, t1) in self.stat_we.items():
                b0, t0 = self.stat_ws.get(cpu, (b1, t1))
                busy[cpu] = 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        return {
            "cpu_busy_pct": busy,
            "ok": self.ok, "non_2xx": self.non_2xx, "connect_errors": self.connect_errors,
            "resets": self.resets,
            "timeouts": self.timeouts, "dropped": self.dropped, "late": self.late,
            "scheduled": self.scheduled, "peak_connections": self.peak,
            "cpu_window_s": self.cpu_we - self.cpu_ws,
            "wall_window_s": self.wall_we - self.wall_ws,
        }


def _proc_stat() -> dict[int, tuple[int, int]] | None:
    """Per-CPU (busy, total) jiffies from /proc/stat (Linux), to tell how busy every CPU
    was during the measured window; None elsewhere."""
    try:
        with open("/proc/stat", "rb") as f:
            lines = f.read().split(b"\n")
    except OSError:
        return None
    out = {}
    for line in lines:
        if line.startswith(b"cpu") and line[3:4].isdigit():
            parts = line.split()
            vals = [int(v) for v in parts[1:9]]  # user nice system idle iowait irq softirq steal
            total = sum(vals)
            out[int(parts[0][3:])] = (total - vals[3] - vals[4], total)
    return out


def _resolve(host: str, port: int) -> str:
    """The address to connect to, looked up once (not once per connection): the first
    of the host's addresses that accepts a connection, else the name itself."""
    import ipaddress
    import socket

    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return host
    for family, type_, proto, _, addr in infos:
        try:
            with socket.socket(family, type_, proto) as s:
                s.settimeout(1.0)
                s.connect(addr)
            return str(addr[0])
        except OSError:
            continue
    return host


def _worker(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    spec["host"] = _resolve(spec["host"], spec["port"])
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        loop_name = "uvloop"
    except ImportError:
        loop = asyncio.new_event_loop()
        loop_name = "asyncio"
    asyncio.set_event_loop(loop)
    wall0 = time.perf_counter()
    gen = _Gen(spec, loop)
    gen.start()
    # A last guard: whatever happens, the loop ends shortly after the hard deadline.
    limit = spec["warmup"] + spec["duration"] + spec["timeout"] + 1.0
    try:
        loop.run_until_complete(asyncio.wait_for(asyncio.shield(gen.done), limit))
    except asyncio.TimeoutError:
        gen._finish()
    out = gen.result()
    try:
        affinity = sorted(os.sched_getaffinity(0))
        pinned = len(affinity) < (os.cpu_count() or 1)
    except AttributeError:
        affinity, pinned = None, False
    out.update(loop=loop_name, precise_timer=gen.timer is not None, affinity=affinity,
               pinned=pinned, cpu_total_s=time.process_time(),
               wall_total_s=time.perf_counter() - wall0)
    base = spec["out"]
    with open(base + ".lat", "wb") as f:
        gen.lat.tofile(f)
    with open(base + ".lag", "wb") as f:
        gen.lag.tofile(f)
    Path(base + ".json.tmp").write_text(json.dumps(out))
    os.replace(base + ".json.tmp", base + ".json")
    # Close what is left without waiting for the server.
    for task in asyncio.all_tasks(loop):
        task.cancel()
    try:
        loop.run_until_complete(asyncio.sleep(0))
    except Exception:  # noqa: BLE001
        pass
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lessons.load SPEC.json  (started by lessons.load.run)")
    sys.exit(_worker(sys.argv[1]))
