"""Section 10, Profiling: decided from notebook 10's records.

Records read (``nb.record`` keys of 10_profiling; five servers, one gunicorn sync worker
each: no profiler, silk, pyinstrument, DEBUG=True, debug toolbar):
  "queries"     {"slow-orders": 51, "fast-orders": 1, "limit": 50}: SQL queries per request
                of /l10/slow-orders and /l10/fast-orders, counted by the server without a
                profiler (the truth the profilers are compared with)
  "silk"        what silk stored for this run's tagged slow-orders requests (read from its
                tables): {"sent": 3, "recorded": 3, "hello recorded": 0, "queries": [51, ..],
                "repeated statement": [50, ..], "explained": [51, ..], "shares":
                {"serialize": 0.067, "related-object fetch": 0.87, ...} (median over the
                requests of each function's cumulative share of silk's cProfile text, None
                when the text does not name it), "dashboard status": 200}
  "pyinstrument shares"  the same shares from pyinstrument sampling the view in-process
  "toolbar"     {"server-timing queries": 51, "similar": 50, "body untouched": true}: what
                the toolbar reported for one slow-orders request (its Server-Timing header,
                its SQL panel)
  "cost"        {label: {"p50_ms", "p99_ms", "runs"}}: /l10/fast-orders with one connection
                on each server, medians of the interleaved repeats
"""

from __future__ import annotations

from lessons.claims._rules import Records, Verdict, claim, confirmed, depends, refuted

NB = "10_profiling"

# A function a reader can find in a profile sorted by cumulative time: 2% of the request.
# slow-orders' serializer takes several times that under silk's cProfile.
NAMED = 0.02
# A profiler whose cost is plain on every request: 1.5x the p50 of the same server
# without it, medians of repeated runs (the toolbar measures 5-10x here).
COSTLY = 1.5


def _pct(share: float | None) -> str:
    return "not named" if share is None else f"{share:.1%}"


@claim('django-silk', section=10, notebook=NB,
       guide='Profile with django-silk: SilkyMiddleware early, SILKY_PYTHON_PROFILER = True; dashboard at /silk/',
       gives=("confirmed", "refuted", "depends"))
def django_silk(r: Records) -> Verdict:
    """Confirmed when silk, set up as the guide says, shows both of slow-orders' problems
    and its dashboard answers: its SQL view stores every tagged request with the lab's
    query count and the customer query repeated once per order (the N+1), and its cProfile
    text gives ``serialize`` at least 2% of the time (the wasteful serialization).  Depends
    when it shows only one of them (or both, but /silk/ does not answer); refuted when it
    shows neither."""
    m = r[NB]
    s = m["silk"]
    truth = m["queries"]["slow-orders"]
    sampled = m["pyinstrument shares"]
    shares = s["shares"]
    n_plus_one = (s["recorded"] == s["sent"] > 0 and all(q == truth for q in s["queries"])
                  and bool(s["repeated statement"])
                  and min(s["repeated statement"]) >= truth - 1)
    serializer = (shares.get("serialize") or 0.0) >= NAMED
    silk_own = sum(shares.get(k) or 0.0 for k in ("silk: EXPLAIN", "silk: stack traces"))
    text = (f"silk stored {s['recorded']} of the {s['sent']} tagged slow-orders requests "
            f"({s['hello recorded']} of /l01/hello), with "
            f"{', '.join(map(str, s['queries'])) or 'no'} "
            f"queries (the lab counted {truth}) and one statement repeated "
            f"{max(s['repeated statement'], default=0)} times; its cProfile text gives serialize "
            f"{_pct(shares.get('serialize'))} of the time (pyinstrument, sampling without silk: "
            f"{_pct(sampled.get('serialize'))}) and the related-object fetch "
            f"{_pct(shares.get('related-object fetch'))} (silk's own EXPLAINs and stack traces, "
            f"inside the queries, {silk_own:.0%}); /silk/ answered HTTP {s['dashboard status']}")
    if n_plus_one and serializer:
        if s["dashboard status"] == 200:
            return confirmed(text)
        return depends(text, when="silk stores both problems, but its dashboard did not answer")
    if n_plus_one:
        return depends(text, when="its SQL view shows the N+1, its profile does not show the "
                                  "serializer")
    if serializer:
        return depends(text, when="its profile shows the serializer, its SQL view does not show "
                                  "the N+1")
    return refuted(text)


@claim('debug-toolbar', section=10, notebook=NB,
       guide='Django Debug Toolbar (Development): debug_toolbar app and middleware, INTERNAL_IPS',
       gives=("confirmed", "refuted", "depends"))
def debug_toolbar(r: Records) -> Verdict:
    """Confirmed when the toolbar, set up as the guide says (with DEBUG on, which its
    default callback requires), reports slow-orders' query count on a JSON endpoint (its
    Server-Timing header) and costs at least 1.5x the p50 of the server without it: a
    development tool.  Depends when it reports the queries at less cost (then only DEBUG
    keeps it out of production); refuted when it does not report them."""
    m = r[NB]
    t = m["toolbar"]
    cost = m["cost"]
    truth = m["queries"]["slow-orders"]
    none = cost["no profiler"]["p50_ms"]
    ratio = cost["debug toolbar"]["p50_ms"] / none
    debug_alone = cost["DEBUG=True"]["p50_ms"] / none
    text = (f"on a JSON endpoint the toolbar's Server-Timing header counted "
            f"{t['server-timing queries']} SQL queries (the lab counted {truth}; its SQL panel: "
            f"{t['similar']} similar) and left the body "
            f"{'untouched' if t['body untouched'] else 'changed'}; "
            f"it costs {ratio:.1f}x the p50 of no profiler ({debug_alone:.2f}x for DEBUG alone), "
            f"one request at a time")
    if t["server-timing queries"] != truth:
        return refuted(text)
    if ratio >= COSTLY:
        return confirmed(text)
    return depends(text, when="it finds the queries at little cost: only DEBUG keeps it in "
                              "development")
