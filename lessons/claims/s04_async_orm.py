"""Section 4, Async ORM operations: decided from notebook 04's records.

Records read (``nb.record`` keys of 04_async_orm):
  "guide get_items"       the guide's ``get_items`` run as written in the kernel
                          (``nb.attempt``): {"raised": exception type or None, "message"}
  "corrected get_items"   {"status": HTTP status} of a corrected view returning rows
                          (``async for`` over ``.values()``, ``acount``), not instances
  "guide get_stats"       the guide's ``get_stats`` run as written (``nb.attempt``)
  "get_stats answer"      {"status": HTTP status, "body": the JSON it returned}, recorded
                          only when it ran
  "queries"               {"n": queries per request, "ms": each one's pg_sleep}
  "queries per mode"      {"sequential" | "gather" | "threads": {"elapsed_ms", "threads",
                          "connections"}}: one request to /l04/queries per mode (uvicorn):
                          awaited one by one, ``asyncio.gather`` (the guide's dashboard),
                          ``sync_to_async(thread_sensitive=False)`` gathered
  "connections left open by thread_sensitive=False"
                          connections the probe server's process holds to PostgreSQL
                          (TCP, read from the OS) after that request minus before
"""

from __future__ import annotations

from lessons.claims._rules import Records, Verdict, claim, confirmed, raised, refuted

NB = "04_async_orm"

# Queries that run at the same time take about one query's time, not the sum: counted
# as parallel when the gathered queries took at most 0.6x the sum of their sleeps (3
# queries in parallel take ~0.35-0.45x here, one after the other >= 1.0x, by
# construction: pg_sleep cannot end early) and ran on more than one connection (one
# PostgreSQL connection runs one statement at a time).
PARALLEL_SHARE = 0.6


@claim("async-orm-get-items", section=4, notebook=NB,
       guide="get_items: aget, sync_to_async(list), async for, acount, aexists; "
             "JsonResponse({'items': items, 'count': count})",
       gives=("confirmed", "refuted"))
def async_orm_get_items(r: Records) -> Verdict:
    """The guide's view, run as written: refuted when it raises (the exception is the
    evidence), confirmed when it returns a response."""
    error = raised(r[NB]["guide get_items"])
    if error is None:
        return confirmed("the guide's get_items, run as written, returned a response")
    fixed = r[NB]["corrected get_items"]["status"]
    return refuted(f"the guide's get_items, run as written, raised {error}; a corrected view that "
                   f"returns rows (async for over .values(), acount) answers HTTP {fixed}")


@claim("async-aggregation", section=4, notebook=NB,
       guide="stats = await Item.objects.aaggregate(avg_price=Avg('price'), total=Sum('quantity'))",
       gives=("confirmed", "refuted"))
def async_aggregation(r: Records) -> Verdict:
    """The guide's ``get_stats``, run as written: confirmed when it answers HTTP 200,
    refuted when it raises or answers anything else."""
    error = raised(r[NB]["guide get_stats"])
    if error is not None:
        return refuted(f"the guide's get_stats, run as written, raised {error}")
    answer = r[NB]["get_stats answer"]
    text = f"the guide's get_stats, run as written, answered HTTP {answer['status']}: {answer['body']}"
    return confirmed(text) if answer["status"] == 200 else refuted(text)


@claim("dashboard-parallel", section=4, notebook=NB,
       guide="Parallel Database Queries: run multiple queries in parallel with asyncio.create_task "
             "+ asyncio.gather",
       gives=("confirmed", "refuted"))
def dashboard_parallel(r: Records) -> Verdict:
    """Confirmed when the gathered ORM queries ran in parallel: on more than one
    connection, in at most 0.6x the sum of their sleeps; refuted otherwise (one after
    the other)."""
    q, modes = r[NB]["queries"], r[NB]["queries per mode"]
    n, ms = q["n"], q["ms"]
    g, t = modes["gather"], modes["threads"]
    share = g["elapsed_ms"] / (n * ms)
    left_open = r[NB]["connections left open by thread_sensitive=False"]
    parallel = g["connections"] > 1 and share <= PARALLEL_SHARE
    t_share = t["elapsed_ms"] / (n * ms)
    t_parallel = t["connections"] > 1 and t_share <= PARALLEL_SHARE
    text = (f"{n} queries of {ms} ms each (pg_sleep, each through sync_to_async as every async ORM "
            f"method runs), gathered: {g['elapsed_ms']:,.0f} ms ({share:.2f}x their sum) on "
            f"{_n(g['threads'], 'thread')} and {_n(g['connections'], 'connection')}; with "
            f"sync_to_async(thread_sensitive=False): {t['elapsed_ms']:,.0f} ms ({t_share:.2f}x, "
            f"{'in parallel' if t_parallel else 'not in parallel'}) on "
            f"{_n(t['connections'], 'connection')}, {left_open:+d} PostgreSQL connections left open "
            f"after the request")
    return confirmed(text) if parallel else refuted(text)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
