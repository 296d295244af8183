"""Section 5, Middleware optimization: decided from notebook 05's records.

Records read (``nb.record`` keys of 05_middleware):
  "default / minimal in-process"   {"wsgi" | "asgi": [median, q1, q3]}: a request's time
                                   through Django's handler (no server) with the default
                                   (startproject) stack over its time with the guide's
                                   minimal stack, ratio taken within each of the paired
                                   rounds
  "stack rps"                      {"gunicorn-sync" | "uvicorn": {"default" | "minimal" |
                                   "none": req/s}}: medians over the interleaved repeats,
                                   one worker on one core, 16 connections, /l01/hello
  "tokenless POST"                 {stack: {"Django view" | "DRF view": HTTP status}}: a
                                   POST with no cookie and no CSRF token; stacks "default"
                                   (with CsrfViewMiddleware) and "minimal" (without)
  "timing middleware hops, in-process"
                                   {"wsgi" | "asgi": {"none" | "guide": thread hops per
                                   request}}: the guide's TimingMiddleware alone vs no
                                   middleware, sync_to_async + async_to_sync, exact
  "guide header"                   {"requests": n, "present": share of responses carrying
                                   X-Request-Duration, "reads 0.000": share reading 0.000}
"""

from __future__ import annotations

from lessons.claims._rules import Records, Verdict, claim, confirmed, depends, refuted

NB = "05_middleware"

# "Beats" = the median of the paired ratios (default / minimal, one per round) is at
# least 1.05 and at least three rounds in four agree (lower quartile above 1). Decided
# in-process, where pairing within rounds keeps the median's spread to a few percent
# (medians 1.17-1.24x under WSGI and 1.46-1.54x under ASGI over three quick runs here);
# over HTTP on a shared two-core machine one gunicorn worker's throughput moves between
# repeats by more than the effect, so those numbers are shown, not used to decide.
FASTER = 1.05
INTERFACES = {"wsgi": "WSGI", "asgi": "ASGI"}


@claim("minimal-middleware", section=5, notebook=NB,
       guide="Minimal middleware stack for APIs: Security, Session (only if using sessions), "
             "Common; skip CSRF, auth, messages",
       gives=("confirmed", "refuted", "depends"))
def minimal_middleware(r: Records) -> Verdict:
    """Confirmed when the guide's minimal stack beats the default one (in-process, median
    of the paired ratios at least 1.05, lower quartile above 1) under both WSGI and ASGI;
    depends when under one only; refuted under neither."""
    ratio = r[NB]["default / minimal in-process"]
    rps = r[NB]["stack rps"]
    http = {s: rps[s]["minimal"] / rps[s]["default"] for s in ("gunicorn-sync", "uvicorn")}
    text = (f"a request through the default stack takes {ratio['wsgi'][0]:.2f}x as long as through the "
            f"guide's minimal one under WSGI and {ratio['asgi'][0]:.2f}x under ASGI (in-process, medians "
            f"of paired rounds; lower quartiles {ratio['wsgi'][1]:.2f}x and {ratio['asgi'][1]:.2f}x); "
            f"over HTTP, one worker, minimal serves {http['gunicorn-sync']:.2f}x the default's req/s "
            f"under gunicorn sync and {http['uvicorn']:.2f}x under uvicorn")
    beats = [i for i in INTERFACES if ratio[i][0] >= FASTER and ratio[i][1] > 1]
    if len(beats) == 2:
        return confirmed(text)
    if not beats:
        return refuted(text)
    return depends(text, when=f"at least {FASTER:.2f}x faster under {INTERFACES[beats[0]]} only")


@claim("skip-csrf-for-apis", section=5, notebook=NB,
       guide="CsrfViewMiddleware: skip for APIs",
       gives=("confirmed", "refuted", "depends"))
def skip_csrf_for_apis(r: Records) -> Verdict:
    """The middleware guards a view when a tokenless POST is refused (403) with it and
    accepted (2xx) without it.  Refuted when it guards the API (DRF) view: skipping it
    opens the API; depends when it guards plain Django views only (skipping is safe for
    the API's views, not for cookie-authenticated Django views); confirmed when it
    guards neither."""
    post = r[NB]["tokenless POST"]
    on, off = post["default"], post["minimal"]

    def guards(view: str) -> bool:
        return on[view] == 403 and 200 <= off[view] < 300

    text = (f"a POST without cookie or CSRF token gets HTTP {on['Django view']} from a plain Django view "
            f"with CsrfViewMiddleware and {off['Django view']} without it; a DRF view answers "
            f"{on['DRF view']} with it and {off['DRF view']} without")
    if guards("DRF view"):
        return refuted(text + ": the middleware guards the API's views too")
    if guards("Django view"):
        return depends(text, when="safe for DRF views (csrf_exempt; DRF's SessionAuthentication checks "
                                  "CSRF itself), not for plain Django views authenticated by cookie")
    return confirmed(text + ": the middleware guarded neither")


@claim("timing-middleware", section=5, notebook=NB,
       guide="Custom TimingMiddleware: time.perf_counter() around get_response, X-Request-Duration "
             "header",
       gives=("confirmed", "refuted", "depends"))
def timing_middleware(r: Records) -> Verdict:
    """Refuted when responses lack its header (it does not work); confirmed when it
    works and adds no thread hop under WSGI nor ASGI; depends (on the interface) when it
    works but adds hops under one of them."""
    hops = r[NB]["timing middleware hops, in-process"]
    header = r[NB]["guide header"]
    added = {i: hops[i]["guide"] - hops[i]["none"] for i in INTERFACES}
    text = (f"X-Request-Duration on {header['present']:.0%} of {header['requests']} responses, "
            f"{header['reads 0.000']:.0%} of them reading 0.000 (seconds, 3 decimals)")
    counted = (f"; it adds {added['wsgi']:g} thread hops per request under WSGI and {added['asgi']:g} "
               f"under ASGI")
    if header["present"] < 1:
        return refuted(text + counted)
    if added["wsgi"] == 0 and added["asgi"] == 0:
        return confirmed(text + counted)
    if added["wsgi"] == 0:
        return depends(text, when=f"free under WSGI, {added['asgi']:g} thread hops per request under ASGI")
    return depends(text, when=f"{added['wsgi']:g} thread hops per request under WSGI, {added['asgi']:g} "
                              f"under ASGI")
