"""Running a load: keep-alive HTTP/1.1 from its own process, closed or open loop.

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

A closed-loop run in which no measured request finished measured nothing: no connection
opened, or got its warm-up answer, before the window ended (a stall of the server or of
the machine through warm-up and window, as a short quick-mode run beside a busy browser
can meet; or a server whose first answers take longer than both).  It runs once more, at
once; the second run's first warning says so, and its ``meta["first_run"]`` keeps the
first one's counts (saved too when ``save``).  If the second finishes nothing either, its
warnings ask whether the server runs.  An open-loop run is never repeated: when nothing
finished, every request due in its window was dropped, and that is its result.

Percentiles are exact, from every raw sample (numpy), concatenated across processes
(``lessons.measure.merge``); each warning is a rule of ``lessons.measure.validity``
(and ``RERUN``, the note above).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lessons.measure.merge import merge
from lessons.measure.result import Run
from lessons.measure.spec import MAX_CONNECTIONS, LoadSpec

__all__ = ["run", "arun"]

_MARGIN_S = 4.0         # start-up of the load process + writing its result
RERUN = ("A first run finished no request sent in its {window:g} s window (a stall of the "
         "server or the machine, or first answers slower than warm-up and window): this "
         "is a second run.")


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
    of process start-up, whatever the server does (twice that when a closed loop's first
    run finished no request and ran again).  ``arrival="poisson"`` draws
    exponential gaps instead of uniform ones.  ``progress`` prints one line when the run
    starts and ends (None: only for runs of 10 s or more).  ``save`` appends the run to
    ``config.results_dir()`` with the machine's facts (``lessons.measure.log.save``).
    """
    if progress is None:
        progress = warmup + duration >= 10.0
    spec = LoadSpec.parse(url, connections=connections, rate=rate, duration=duration,
                          warmup=warmup, timeout=timeout, paths=paths, headers=headers,
                          processes=processes, max_connections=max_connections,
                          arrival=arrival)
    from lessons import cpus

    plan = cpus.plan()
    r = _measure(spec, plan, processes, label=label, url=url, progress=progress, save=save)
    if spec.rate is None and r.requests == 0:   # measured nothing: once more (docstring)
        r = _measure(spec, plan, processes, label=label, url=url, progress=progress, save=save,
                     first=r)
    return r


def _measure(spec: LoadSpec, plan: Any, processes: int, *, label: str, url: str,
             progress: bool, save: bool, first: Run | None = None) -> Run:
    """One run of ``spec``: its load processes, their merged ``Run``, its progress line
    and the saved record; a second run (``first``: the empty one) says so first among its
    warnings and keeps the first one's counts in ``meta["first_run"]``."""
    if progress:
        what = f"{spec.rate:,.0f} req/s" if spec.rate else f"{spec.connections} conn"
        print(f"{label or 'load'}: {spec.mode} loop {what}, "
              f"{spec.warmup:g}+{spec.duration:g} s ...", end="", flush=True)
    results, elapsed, cpu_delta = _run_workers(spec, plan, processes)
    r = merge(spec, results, label=label, url=url, plan=plan, cpu_delta=cpu_delta,
              elapsed=elapsed)
    if first is not None:
        r.warnings.insert(0, RERUN.format(window=spec.duration))
        r.meta["first_run"] = {**first.to_json_dict(), "scheduled": first.meta.get("scheduled"),
                               "elapsed_s": first.meta.get("elapsed_s")}
    if progress:
        print(f" {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms"
              + ("" if r.valid else "  (invalid: see warnings)"), flush=True)
    if save:
        from lessons.measure import log

        log.save(r)     # never raises: a run that cannot be saved only warns
    return r


async def arun(url: str, **options: Any) -> Run:
    """``run`` for ``await`` (notebook top-level await), with the same arguments: it runs
    in a thread, so the caller's event loop keeps serving while the load process works."""
    return await asyncio.to_thread(functools.partial(run, url, **options))


def _split(total: int, n: int) -> list[int]:
    return [total // n + (1 if k < total % n else 0) for k in range(n)]


def _run_workers(spec: LoadSpec, plan: Any, processes: int
                 ) -> tuple[list[dict[str, Any]], float, dict[int, float]]:
    """Start the load processes, wait for them (never past the time bound), read their
    results; also the busy percent of every CPU over the run."""
    import psutil

    from lessons import procs

    tmp = Path(tempfile.mkdtemp(prefix="lab-load-"))
    workers: list[Any] = []
    before = psutil.cpu_times(percpu=True)
    t_start = time.monotonic()
    try:
        _start(spec, plan, processes, tmp, workers)
        deadline = t_start + spec.warmup + spec.duration + spec.timeout + \
            _MARGIN_S + 0.5 * processes
        hung = _wait(workers, deadline)
        elapsed = time.monotonic() - t_start
        after = psutil.cpu_times(percpu=True)
        for p in workers:
            procs.stop(p, timeout=2.0)
        results = [_collect(tmp, k, p, k in hung) for k, p in enumerate(workers)]
    finally:
        for p in workers:
            if procs.alive(p):
                procs.stop(p, timeout=2.0)
        for f in tmp.iterdir():
            f.unlink(missing_ok=True)
        tmp.rmdir()
    return results, elapsed, _busy(before, after)


def _start(spec: LoadSpec, plan: Any, processes: int, tmp: Path, workers: list[Any]) -> None:
    """One load process per share of the spec, pinned to the client CPUs; each is added
    to ``workers`` as soon as it runs (to be stopped whatever happens next)."""
    import dataclasses

    from lessons import config, procs

    conns = _split(spec.connections, processes)
    maxc = _split(max(spec.max_connections, processes), processes)
    for k in range(processes):
        wspec = dataclasses.replace(
            spec, connections=max(1, conns[k]), max_connections=maxc[k],
            out=str(tmp / f"w{k}"), seed=k,
            rate=None if spec.rate is None else spec.rate / processes)
        (tmp / f"w{k}.spec.json").write_text(wspec.to_json())
        workers.append(procs.spawn(
            [sys.executable, "-m", "lessons.measure.child", str(tmp / f"w{k}.spec.json")],
            cwd=config.REPO, log=tmp / f"w{k}.log", cpus=plan.client))


def _wait(workers: list[Any], deadline: float) -> set[int]:
    """Wait for every load process until ``deadline``; the indexes of those still
    running then."""
    hung = set()
    for k, p in enumerate(workers):
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - TimeoutExpired: it is stopped by the caller
            hung.add(k)
    return hung


def _collect(tmp: Path, k: int, p: Any, hung: bool) -> dict[str, Any]:
    """Load process ``k``'s result, with its raw latencies and send lags (bytes)."""
    res = tmp / f"w{k}.json"
    if hung or p.returncode != 0 or not res.exists():
        log = (tmp / f"w{k}.log").read_text(errors="replace")[-2000:]
        why = "did not finish in time" if hung else f"exited with {p.returncode}"
        raise RuntimeError(f"load process {k} {why}:\n{log}")
    d = json.loads(res.read_text())
    d["lat"] = (tmp / f"w{k}.lat").read_bytes()
    d["lag"] = (tmp / f"w{k}.lag").read_bytes()
    return d


def _busy(before: Any, after: Any) -> dict[int, float]:
    """Every CPU's busy percent between two ``psutil.cpu_times(percpu=True)``."""
    busy = {}
    for cpu, (b, a) in enumerate(zip(before, after)):
        total = sum(a) - sum(b)
        idle = (a.idle - b.idle) + (getattr(a, "iowait", 0) - getattr(b, "iowait", 0))
        busy[cpu] = 100.0 * (1 - idle / total) if total > 0 else 0.0
    return busy
