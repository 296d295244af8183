"""Section 1, ASGI vs WSGI: decided from notebook 01's records.

Records read (``nb.record`` keys of 01_asgi_vs_wsgi):
  "rps"               {"sync view": {server kind: req/s}, "async view": {...}}, one worker
                      each on one core, 16 connections (medians of the interleaved repeats)
  "p50 overhead ms"   {"at a common rate": ms, "at saturation": ms}: uvicorn's p50 minus
                      gunicorn sync's, for the sync view; "uvicorn at the common rate": ms,
                      uvicorn's own p50 there (older records lack it)
  "cpu ms per request" {"rate": req/s, "gunicorn-sync": ms, "uvicorn": ms}: the server
                      processes' CPU time (user + system) per request of the sync view, at
                      an open-loop rate both servers hold
  "waiting"           {"wait ms": 100, "clients": 10, "rps": {"gunicorn-sync": .., "uvicorn": ..}}
(Also recorded, read by no rule: "core ms per request at saturation", 1000 / req/s per
server kind, and "hops", sync_to_async hops per request by configuration and path.)
"""

from __future__ import annotations

from lessons.claims._rules import Missing, Records, Verdict, claim, confirmed, depends, refuted

NB = "01_asgi_vs_wsgi"

FASTER = 1.5   # "~3,000 vs ~1,500" is 2x; 1.5x leaves room for a noisy machine
OVERHEAD_MS = 10  # "~15ms": an overhead of 10 ms or more is of that order
HELD = 0.8        # a server that needs more than 80% of its core at the rate queues: not a held rate


@claim("asgi-3000-wsgi-1500", section=1, notebook=NB,
       guide="ASGI: ~3,000 req/s (Django with Uvicorn); WSGI: ~1,500 req/s (Django with Gunicorn)",
       gives=("confirmed", "refuted", "depends"))
def asgi_twice_wsgi(r: Records) -> Verdict:
    """Confirmed when uvicorn serves at least 1.5x gunicorn's sync worker for both a def
    and an async def view; depends when it does for one view only; refuted when it does
    for neither."""
    rps = r[NB]["rps"]
    wsgi = rps["sync view"]["gunicorn-sync"]
    ratios = {view: rps[view]["uvicorn"] / rps[view]["gunicorn-sync"] for view in ("sync view", "async view")}
    text = (f"uvicorn / gunicorn sync, one worker each: {ratios['sync view']:.2f}x for a def view, "
            f"{ratios['async view']:.2f}x for an async def view ({wsgi:,.0f} req/s for the def view "
            f"under WSGI; the guide says 2x)")
    faster = [view for view, x in ratios.items() if x >= FASTER]
    if len(faster) == 2:
        return confirmed(text)
    if not faster:
        return refuted(text)
    name = {"sync view": "a def view", "async view": "an async def view"}[faster[0]]
    return depends(text, when=f"ASGI is at least {FASTER}x faster for {name} only")


@claim("asgi-15ms-overhead", section=1, notebook=NB,
       guide="~15ms overhead observed in some ASGI setups",
       gives=("confirmed", "refuted", "depends"))
def asgi_overhead(r: Records) -> Verdict:
    """Confirmed when uvicorn adds 10 ms or more to a def view's p50 even at a rate both
    servers hold; depends when it does only at saturation (queueing); refuted when
    neither.  The evidence also gives the extra server CPU per request.  Not measured
    when the "common" rate was not one uvicorn held: it needed more than 80% of its core
    there (CPU ms per request x rate), or its p50 there was longer than the gap between
    two arrivals (1000 / rate ms), which a request that does not queue cannot take
    (a stall of the shared machine during the run)."""
    over = r[NB]["p50 overhead ms"]
    cpu = r[NB]["cpu ms per request"]
    share = cpu["uvicorn"] * cpu["rate"] / 1000
    if share > HELD:
        raise Missing(NB, f"the p50 at a rate uvicorn holds (it needed {share:.0%} of its core at "
                          f"{cpu['rate']:,.0f} req/s)")
    own, gap = over.get("uvicorn at the common rate"), 1000 / cpu["rate"]
    if own is not None and own > gap:
        raise Missing(NB, f"the p50 at a rate uvicorn holds (its p50 at {cpu['rate']:,.0f} req/s was "
                          f"{own:.1f} ms, longer than the {gap:.1f} ms between arrivals: requests queued)")
    low, busy = over["at a common rate"], over["at saturation"]
    extra = cpu["uvicorn"] - cpu["gunicorn-sync"]
    text = (f"uvicorn adds {low:.2f} ms to a def view's p50 at {cpu['rate']:,.0f} req/s (a rate both "
            f"servers hold), {busy:.1f} ms at saturation (16 connections); it spends {extra:.2f} ms more "
            f"server CPU per request ({cpu['uvicorn']:.2f} vs {cpu['gunicorn-sync']:.2f} ms)")
    if low >= OVERHEAD_MS:
        return confirmed(text)
    if busy >= OVERHEAD_MS:
        return depends(text, when="only at saturation, where requests queue")
    return refuted(text)


@claim("asgi-concurrent-nonblocking", section=1, notebook=NB,
       guide="ASGI: many concurrent requests per worker, non-blocking I/O; WSGI: one request at a time "
             "per worker, blocking I/O",
       gives=("confirmed", "refuted"))
def asgi_concurrency(r: Records) -> Verdict:
    """Confirmed when, with clients that each wait, one sync worker serves no more than
    one request at a time (at most 1.2x 1000/wait req/s) and one uvicorn worker serves at
    least 3x as many; refuted otherwise."""
    w = r[NB]["waiting"]
    one_at_a_time = 1000 / w["wait ms"]
    sync, asgi = w["rps"]["gunicorn-sync"], w["rps"]["uvicorn"]
    text = (f"{w['clients']} clients on a view waiting {w['wait ms']} ms: gunicorn sync "
            f"{sync:,.0f} req/s (one at a time would be {one_at_a_time:,.0f}), uvicorn {asgi:,.0f} "
            f"({asgi / sync:.1f}x)")
    if sync <= 1.2 * one_at_a_time and asgi >= 3 * sync:
        return confirmed(text)
    return refuted(text)
