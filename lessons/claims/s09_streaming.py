"""Section 9, Response streaming: decided from notebook 09's records.

Records read (``nb.record`` keys of 09_streaming):
  "largest response"  {"items": n, server kind: {endpoint: {"first byte ms", "total ms",
                      "peak MB"}}} for the largest list, servers "gunicorn-sync" and
                      "uvicorn", endpoints "JsonResponse", "stream, sync generator" (the
                      guide's), "stream, async generator"; "peak MB" is the growth of the
                      server's resident memory during that one request, on a fresh server;
                      "first byte ms" is the time to the first byte of the body
  "iterator"          {"items": n, server kind: {"iterator()": {...}, "evaluated queryset":
                      {...}}}: the guide's streaming view as written, and the same view
                      iterating ``Item.objects.all()``, with the same three numbers
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lessons.claims._rules import Records, Verdict, by_server, claim

NB = "09_streaming"

WSGI, ASGI = "gunicorn-sync", "uvicorn"
NAMES = {WSGI: "gunicorn sync (WSGI)", ASGI: "uvicorn (ASGI)"}
SOONER = 0.25    # streaming's first body byte within a quarter of JsonResponse's
SMALLER = 0.5    # and at most half its peak memory
SAVED_MB = 1.0   # iterator(): at least 1 MB saved, and at most half the evaluated queryset's
GUIDE, WHOLE, ASYNC = "stream, sync generator", "JsonResponse", "stream, async generator"


def _mb(value: float) -> str:
    return f"{value:.3g} MB"


@claim("streaming-large-responses", section=9, notebook=NB,
       guide="Implement response streaming for large data: StreamingHttpResponse(generate()) with a "
             "sync generator",
       gives=("confirmed", "refuted", "depends"))
def streaming_large_responses(r: Records) -> Verdict:
    """Under each server the guide's sync generator streams when the first byte of its
    body comes within a quarter of JsonResponse's and the server's memory grows at most
    half as much as for JsonResponse. Confirmed under both servers, depends under one,
    refuted under neither."""
    big = r[NB]["largest response"]
    ok, why_not, parts = [], {}, []
    for server in (WSGI, ASGI):
        guide, whole = big[server][GUIDE], big[server][WHOLE]
        reasons = []
        if guide["first byte ms"] > SOONER * whole["first byte ms"]:
            reasons.append("its body's first byte does not come within a quarter of JsonResponse's time")
        if guide["peak MB"] > SMALLER * whole["peak MB"]:
            reasons.append("its memory grows more than half as much as JsonResponse's")
        if reasons:
            why_not[server] = " and ".join(reasons)
        else:
            ok.append(server)
        parts.append(f"{NAMES[server]}: first body byte after {guide['first byte ms']:,.1f} ms "
                     f"(JsonResponse {whole['first byte ms']:,.1f} ms), peak memory growth "
                     f"{_mb(guide['peak MB'])} ({_mb(whole['peak MB'])})")
    text = (f"{big['items']:,} items, the guide's sync generator: " + "; ".join(parts)
            + f"; an async generator under uvicorn: first body byte after "
              f"{big[ASGI][ASYNC]['first byte ms']:,.1f} ms")
    return by_server(ok, NAMES, why_not, text)


def _saves(pair: Mapping[str, Any]) -> bool:
    it, whole = pair["iterator()"]["peak MB"], pair["evaluated queryset"]["peak MB"]
    return whole - it >= SAVED_MB and it <= SMALLER * whole


@claim("iterator-large-querysets", section=9, notebook=NB,
       guide="Use iterator() for large querysets: Item.objects.iterator(chunk_size=100)",
       gives=("confirmed", "refuted", "depends"))
def iterator_large_querysets(r: Records) -> Verdict:
    """The guide's streaming view with iterator(chunk_size=100) against the same view over
    the evaluated queryset, each on a fresh server: under each server iterator() saves
    memory when the server's memory grows at least 1 MB less, and at most half as much.
    Confirmed under both servers, depends under one, refuted under neither."""
    m = r[NB]["iterator"]
    ok, why_not, parts = [], {}, []
    for server in (WSGI, ASGI):
        pair = m[server]
        if _saves(pair):
            ok.append(server)
        else:
            it, whole = pair["iterator()"]["peak MB"], pair["evaluated queryset"]["peak MB"]
            why_not[server] = (f"it saves only {_mb(whole - it)}" if whole - it < SAVED_MB
                               else "its growth is more than half the evaluated queryset's")
        it, whole = pair["iterator()"], pair["evaluated queryset"]
        parts.append(f"{NAMES[server]} {_mb(it['peak MB'])} against {_mb(whole['peak MB'])} "
                     f"({it['total ms']:,.0f} ms against {whole['total ms']:,.0f} ms for the whole body)")
    text = (f"the guide's view over {m['items']:,} items, peak memory growth with iterator(chunk_size=100) "
            f"and over the evaluated queryset: " + "; ".join(parts))
    return by_server(ok, NAMES, why_not, text)
