"""Section 1, ASGI vs WSGI: decided from notebook 01's records.

Records read (``nb.record`` keys of 01_asgi_vs_wsgi):
  "rps"               {"sync view": {server kind: req/s}, "async view": {...}}, one worker
                      each on one core, 16 connections (medians of the interleaved repeats)
  "p50 overhead ms"   {"at a common rate": ms, "at saturation": ms}: uvicorn's p50 minus
                      gunicorn sync's, for the sync view
  "waiting"           {"wait ms": 20, "clients": 10, "rps": {"gunicorn-sync": .., "uvicorn": ..}}
"""

from __future__ import annotations

from lessons.claims._rules import Records, Verdict, claim, confirmed, depends, refuted

NB = "01_asgi_vs_wsgi"

FASTER = 1.5   # "~3,000 vs ~1,500" is 2x; 1.5x leaves room for a noisy machine
SLOWER = 0.8   # ASGI at most 0.8x WSGI: clearly slower, beyond the run-to-run spread


@claim("asgi-3000-wsgi-1500", section=1, notebook=NB,
       guide="ASGI: ~3,000 req/s (Django with Uvicorn); WSGI: ~1,500 req/s (Django with Gunicorn)",
       gives=("confirmed", "refuted", "depends"))
def asgi_twice_wsgi(r: Records) -> Verdict:
    """Confirmed when uvicorn serves at least 1.5x gunicorn's sync worker for both a def
    and an async def view; refuted when it serves at most 0.8x for both; else it depends
    on the view."""
    rps = r[NB]["rps"]
    wsgi = rps["sync view"]["gunicorn-sync"]
    ratios = {view: rps[view]["uvicorn"] / wsgi for view in ("sync view", "async view")}
    text = (f"uvicorn / gunicorn sync, one worker each: {ratios['sync view']:.2f}x for a def view, "
            f"{ratios['async view']:.2f}x for an async def view ({wsgi:,.0f} req/s under WSGI; "
            f"the guide says 2x)")
    if all(x >= FASTER for x in ratios.values()):
        return confirmed(text)
    if all(x <= SLOWER for x in ratios.values()):
        return refuted(text)
    faster = [v for v, x in ratios.items() if x >= FASTER] or ["neither view"]
    return depends(text, when=f"ASGI is clearly faster for {', '.join(faster)} only")


@claim("asgi-15ms-overhead", section=1, notebook=NB,
       guide="~15ms overhead observed in some ASGI setups",
       gives=("confirmed", "refuted", "depends"))
def asgi_overhead(r: Records) -> Verdict:
    """Confirmed when uvicorn adds 10 ms or more to the p50 even at a rate both servers
    hold; depends when it does only at saturation (queueing); refuted when neither."""
    over = r[NB]["p50 overhead ms"]
    low, busy = over["at a common rate"], over["at saturation"]
    text = (f"uvicorn adds {low:.2f} ms to a def view's p50 at a rate both servers hold, "
            f"{busy:.1f} ms at saturation (16 connections)")
    if low >= 10:
        return confirmed(text)
    if busy >= 10:
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
