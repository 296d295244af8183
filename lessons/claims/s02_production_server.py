"""Section 2, Production server configuration: decided from notebook 02's records.

Records read (``nb.record`` keys of 02_production_server):
  "sync sweep rps"    {workers as str: req/s}: gunicorn sync workers on one core, a view
                      that waits 5 ms, 32 connections, until throughput stopped rising
  "sync sweep"        {"formula": (2 x server cores) + 1, "cores": the server's cores,
                      "view wait ms": 5, ...}
  "async sweep rps"   {processes as str: req/s}: gunicorn + uvicorn_worker.UvicornWorker on
                      the same core, an async def view awaiting 5 ms (medians of the
                      interleaved repeats; for one process, of both one-process servers'
                      runs: uvicorn_worker's and the guide's class, the same code)
  "async sweep"       {"per cpu-second": {processes as str: requests per CPU-second of the
                      server's processes}, "one process core busy": fraction of the run the
                      server's core was busy (/proc/stat) with one process, "dedicated-core
                      gain": per-CPU-second ratio (formula's count over one) / that fraction,
                      what the formula's processes would serve over one on a core of their own}
  "worker class"      {"deprecation": the DeprecationWarning importing the guide's class
                      gave ("" if none), "rps ratio": its req/s over uvicorn_worker's, one
                      process each, interleaved}
  "recycling"         {"max requests": 1000, "jitter": 50, "restarts": count,
                      "requests": requests served with recycling, "rps ratio": with / without,
                      "max ms": {"recycling": ms, "none": ms}} (one sync worker each)
  "timeout"           {"timeout s": s, "request ms": ms, "probes": {"sync" | "gthread" |
                      "uvicorn_worker awaiting" | "uvicorn_worker blocking":
                      {"status": HTTP status or None, "seconds": s}}}
  "keep-alive"        {"setting s": s, "idle lifetime s": {"gunicorn sync" | "gunicorn gthread"
                      | "uvicorn_worker": s, or None when still open at the end of the probe}}
(Also recorded, read by no rule: "best workers" {"sync": n, "async": n}, the fewest workers
within 5% of the best throughput, which notebook 11 reads.)
"""

from __future__ import annotations

from typing import Any

from lessons.claims._rules import Missing, Records, Verdict, claim, confirmed, depends, refuted

NB = "02_production_server"

NEAR_PEAK = 0.8     # sync: the formula's count reaches 80% of the sweep's best, or it falls short
EXTRA_PAYS = 1.2    # asyncio: extra processes on a core of their own earn their memory only with 1.2x
FAST_ENOUGH = 0.7   # the guide's class against uvicorn_worker's, the same code: identical servers differed by up to 30% here
KEEPALIVE_S = 1.0   # an idle connection closed within 1 s of --keep-alive honours it
RECYCLE_COST = 0.9  # recycling that keeps less than 90% of the throughput costs too much
STALL = 2.0         # a worst latency twice the one without recycling: requests stalled


def _at(sweep: dict[str, float], workers: int, what: str) -> float:
    if str(workers) not in sweep:
        raise Missing(NB, f"{what} at {workers} workers")
    return sweep[str(workers)]


def _seconds(value: float | None) -> str:
    return "still open at the end of the probe" if value is None else f"{value:.1f} s"


@claim("workers-formula", section=2, notebook=NB,
       guide="Workers = (2 x CPU cores) + 1",
       gives=("confirmed", "refuted", "depends"))
def workers_formula(r: Records) -> Verdict:
    """The formula's count, (2 x the server's cores) + 1, fits a kind of worker when it is
    what the measurements recommend: for gunicorn's sync workers (a view that waits, 5 ms in 02)
    when it reaches at least 80% of the sweep's best throughput; for uvicorn's asyncio
    workers when its processes would serve at least 1.2x one process on a core of their
    own (requests per CPU-second, over the core's busy share with one process: on a
    shared core more processes also take more of it from other programs, which a server
    with its own core would not see).  Confirmed when it fits both, refuted when it fits
    neither, depends when it fits one."""
    sync, asyncio_ = r[NB]["sync sweep rps"], r[NB]["async sweep rps"]
    formula, wait = r[NB]["sync sweep"]["formula"], r[NB]["sync sweep"]["view wait ms"]
    cores = r[NB]["sync sweep"].get("cores", (formula - 1) // 2)  # the formula is 2 x cores + 1
    top_sync = max(sync.values())
    peak = min((int(w) for w, v in sync.items() if v >= 0.95 * top_sync))
    share_sync = _at(sync, formula, "the sync sweep") / top_sync
    raw_async = _at(asyncio_, formula, "the async sweep") / _at(asyncio_, 1, "the async sweep")
    per_cpu = r[NB]["async sweep"]["per cpu-second"]
    efficiency = _at(per_cpu, formula, "requests per CPU-second") / _at(per_cpu, 1, "requests per CPU-second")
    gain_async = r[NB]["async sweep"]["dedicated-core gain"]
    fits = {"sync": share_sync >= NEAR_PEAK, "asyncio": gain_async >= EXTRA_PAYS}
    text = (f"on {cores} server core{'s' if cores != 1 else ''}, sync workers on a view that waits {wait:g} ms: "
            f"the formula's {formula} reach "
            f"{share_sync:.0%} of the best ({top_sync:,.0f} req/s; {peak} workers reach 95% of it, "
            f"the sweep went to {max(int(w) for w in sync)}); asyncio workers: {formula} processes served "
            f"{raw_async:.2f}x one on the shared core, {efficiency:.2f}x per CPU-second, about {gain_async:.2f}x "
            f"on a core of their own")
    if all(fits.values()):
        return confirmed(text)
    if not any(fits.values()):
        return refuted(text)
    kind = "sync" if fits["sync"] else "asyncio"
    return depends(text, when=f"the formula's count is what the measurements recommend for {kind} workers only")


@claim("uvicorn-workers-class", section=2, notebook=NB,
       guide="gunicorn --worker-class uvicorn.workers.UvicornWorker (production command)",
       gives=("confirmed", "refuted"))
def uvicorn_workers_class(r: Records) -> Verdict:
    """Refuted when importing ``uvicorn.workers`` raises a DeprecationWarning, or when the
    guide's class serves less than 0.7x ``uvicorn_worker.UvicornWorker``; confirmed when it
    is neither deprecated nor slower."""
    w = r[NB]["worker class"]
    warning = (w["deprecation"] or "").strip()
    deprecated = "deprecat" in warning.lower()
    said = f"importing it warns: \"{warning.splitlines()[0]}\"" if warning else "importing it gives no warning"
    text = (f"{said}; one process of it serves {w['rps ratio']:.2f}x uvicorn_worker.UvicornWorker's "
            f"throughput (interleaved runs)")
    if deprecated or w["rps ratio"] < FAST_ENOUGH:
        return refuted(text)
    return confirmed(text)


@claim("max-requests-jitter", section=2, notebook=NB,
       guide="--max-requests 1000 --max-requests-jitter 50",
       gives=("confirmed", "refuted", "depends"))
def max_requests_jitter(r: Records) -> Verdict:
    """Refuted when recycling at the guide's N keeps less than 90% of the throughput;
    confirmed when it keeps at least 90% and the worst latency stays under twice the one
    without recycling; depends when throughput holds but requests stall behind each
    restart.  Not measured when no worker restarted during the run."""
    rec = r[NB]["recycling"]
    if rec["restarts"] < 1:
        raise Missing(NB, "a recycling run long enough for a worker to restart")
    stall = rec["max ms"]["recycling"] / rec["max ms"]["none"]
    text = (f"{rec['restarts']} restart(s) in {rec['requests']:,} requests (one worker, --max-requests "
            f"{rec['max requests']} + up to {rec['jitter']}): {rec['rps ratio']:.2f}x the throughput "
            f"without recycling, worst latency {rec['max ms']['recycling']:,.0f} ms against "
            f"{rec['max ms']['none']:,.0f} ms")
    if rec["rps ratio"] < RECYCLE_COST:
        return refuted(text)
    if stall < STALL:
        return confirmed(text)
    return depends(text, when=f"throughput held within {1 - RECYCLE_COST:.0%}, but requests stalled "
                              f"behind each restarting worker")


@claim("timeout-keepalive", section=2, notebook=NB,
       guide="--timeout 30 --keep-alive 5",
       gives=("confirmed", "refuted", "depends"))
def timeout_keepalive(r: Records) -> Verdict:
    """The guide sets both on a UvicornWorker (measured on uvicorn_worker's, the same code).  --timeout does what its name
    says when a request that outlives it (an async def view that awaits) is cut off;
    --keep-alive does when an idle connection is closed within 1 s of the setting.
    Confirmed when both hold, refuted when neither does, depends when one does."""
    t, k = r[NB]["timeout"], r[NB]["keep-alive"]
    probes: dict[str, Any] = t["probes"]
    awaiting = probes["uvicorn_worker awaiting"]
    bounded = awaiting["status"] != 200
    life = k["idle lifetime s"]
    honoured = life["uvicorn_worker"] is not None and abs(life["uvicorn_worker"] - k["setting s"]) <= KEEPALIVE_S

    def reply(p: dict[str, Any]) -> str:
        got = "no HTTP answer" if p["status"] is None else f"HTTP {p['status']}"
        return f"{got} after {p['seconds']:.1f} s"

    text = (f"--timeout {t['timeout s']} and a {t['request ms'] / 1000:g} s request: sync worker "
            f"{reply(probes['sync'])}, gthread {reply(probes['gthread'])}, uvicorn_worker {reply(awaiting)} "
            f"(awaiting) and {reply(probes['uvicorn_worker blocking'])} (blocking its event loop); "
            f"--keep-alive {k['setting s']}: idle connection closed after {_seconds(life['gunicorn sync'])} "
            f"(sync), {_seconds(life['gunicorn gthread'])} (gthread), {_seconds(life['uvicorn_worker'])} "
            f"(uvicorn_worker)")
    if bounded and honoured:
        return confirmed(text)
    if not bounded and not honoured:
        return refuted(text)
    works, fails = ("--keep-alive", "--timeout") if honoured else ("--timeout", "--keep-alive")
    return depends(text, when=f"under uvicorn_worker {works} does what it says and {fails} does not")
