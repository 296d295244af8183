"""Section 8, Database connection optimization: decided from notebook 08's records.

Records read (``nb.record`` keys of 08_db_connections):
  "new connection ms"     median time to open a PostgreSQL connection and run SELECT 1
  "query on open connection ms"  median time of SELECT 1 on a connection already open (what
                          a health check runs: Django's ``is_usable``)
  "processes"             {server kind: worker processes}, e.g. {"gunicorn-sync": 1, "uvicorn": 1}
  "policy rps"            {server kind: {policy: req/s}}, median of the interleaved repeats,
                          16 connections, closed loop; policies "CONN_MAX_AGE=0",
                          "CONN_MAX_AGE=60", "pool" (Django's, OPTIONS={"pool": True}),
                          "dj-db-conn-pool" (the guide's settings), and under gunicorn sync
                          "CONN_MAX_AGE=60 + health checks"
  "one at a time ms"      {server kind: {policy: median ms of one request at a time}}, the
                          servers of one kind taking turns request by request
  "requests one at a time"  how many requests each server got one at a time (30)
  "connections opened"    {server kind: {policy: connections opened for those requests}}, the
                          distinct PostgreSQL backend pids they reported
  "connections held"      {server kind: {policy: {requests served: connections}}}, the last
                          point after the load
  "after a restart"       {"requests": n, "failed": {server kind: {policy: failed of n}}}: the
                          first n requests after PostgreSQL restarted under running servers
  "statement timeout"     {"limit ms", "query ms", "status", "elapsed ms", "next status"}
  "guide's pool"          the attempt to run the guide's django-db-connection-pool settings
                          (``nb.attempt``: what it raised, or that it ran)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lessons.claims._rules import Records, Verdict, by_server, claim, confirmed, depends, raised, refuted

NB = "08_db_connections"

WSGI, ASGI = "gunicorn-sync", "uvicorn"
NAMES = {WSGI: "gunicorn sync (WSGI)", ASGI: "uvicorn (ASGI)"}
HEALTH_COST_MS = 1.0  # a tenth of the 10 ms budget: insurance that costs less is cheap
ON_PAR = 0.5        # the package saves at least half of what Django's pool saves per request
                    # (one request at a time, against CONN_MAX_AGE=0; both save 5-16 ms here,
                    # and a request's median moves by 1-3 ms between runs on this shared
                    # machine, more than the two pools differ, as does 1 s of throughput)
GUIDE_POOL_SIZE = 10  # POOL_SIZE in the guide's settings: what one process keeps


def _last(points: Mapping[str, Any]) -> tuple[int, int]:
    """(requests served, connections) at the largest request count."""
    x = max(points, key=lambda k: int(k))
    return int(x), int(points[x])


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "es" if noun.endswith("s") else "s")


def _saving(seq: Mapping[str, float], policy: str) -> float:
    return seq["CONN_MAX_AGE=0"] - seq[policy]


@claim("conn-max-age", section=8, notebook=NB,
       guide="'CONN_MAX_AGE': 60,  # Persistent connections (seconds)",
       gives=("confirmed", "refuted", "depends"))
def conn_max_age(r: Records) -> Verdict:
    """Under each server, CONN_MAX_AGE=60 helps when its requests one at a time reused
    their connections (at most one opened per process: a count of PostgreSQL backends)
    and were faster than with CONN_MAX_AGE=0, and the server holds at most one connection
    per process after the load. Confirmed under both servers, depends when under one,
    refuted under neither."""
    m = r[NB]
    cost, n = m["new connection ms"], m["requests one at a time"]
    seq, opened = m["one at a time ms"], m["connections opened"]
    held, procs = m["connections held"], m["processes"]
    helps, why_not, parts = [], {}, []
    for server in (WSGI, ASGI):
        new = opened[server]["CONN_MAX_AGE=60"]
        served, kept = _last(held[server]["CONN_MAX_AGE=60"])
        reasons = []
        if new > procs[server]:
            reasons.append(f"it opened {_n(new, 'connection')} for {n} requests one at a time")
        if _saving(seq[server], "CONN_MAX_AGE=60") <= 0:
            reasons.append("a request is not faster than with CONN_MAX_AGE=0")
        if kept > procs[server]:
            reasons.append(f"it holds {_n(kept, 'connection')} for {_n(procs[server], 'process')}")
        if reasons:
            why_not[server] = " and ".join(reasons)
        else:
            helps.append(server)
        parts.append(f"{NAMES[server]}: {_n(new, 'connection')} opened for {n} requests one at a time, "
                     f"{seq[server]['CONN_MAX_AGE=60']:.1f} ms each (CONN_MAX_AGE=0: "
                     f"{seq[server]['CONN_MAX_AGE=0']:.1f} ms), {_n(kept, 'connection')} held after "
                     f"{served:,} requests ({_n(procs[server], 'process')})")
    text = f"a new connection costs {cost:.1f} ms; " + "; ".join(parts)
    return by_server(helps, NAMES, why_not, text)


@claim("conn-health-checks", section=8, notebook=NB,
       guide="'CONN_HEALTH_CHECKS': True,  # Django 4.1+",
       gives=("confirmed", "refuted", "depends"))
def conn_health_checks(r: Records) -> Verdict:
    """Under gunicorn sync with CONN_MAX_AGE=60: refuted when, after PostgreSQL restarted,
    a request still failed with health checks or none failed without them (they saved
    nothing). Otherwise their price decides: a check is one SELECT 1 on the open connection
    at a request's first query (Django 6.1, ``close_if_health_check_failed`` and
    ``is_usable``), so confirmed when a SELECT 1 on an open connection took at most 1 ms,
    depends when more. (The one-request-at-a-time times with and without them are quoted,
    not compared: their difference, a fraction of a millisecond, is smaller than how much
    a median moves between runs on a shared machine.)"""
    m = r[NB]
    restart = m["after a restart"]
    n, failed = restart["requests"], restart["failed"][WSGI]
    without, with_checks = failed["CONN_MAX_AGE=60"], failed["CONN_MAX_AGE=60 + health checks"]
    seq = m["one at a time ms"][WSGI]
    cost = m["query on open connection ms"]
    text = (f"after a PostgreSQL restart, CONN_MAX_AGE=60 under gunicorn sync failed {without} of the "
            f"next {n} requests without health checks and {with_checks} with them; the check is one "
            f"SELECT 1, {cost:.2f} ms on an open connection here (one request at a time took "
            f"{seq['CONN_MAX_AGE=60 + health checks']:.1f} ms with them, {seq['CONN_MAX_AGE=60']:.1f} ms "
            f"without)")
    if with_checks > 0 or without == 0:
        return refuted(text)
    if cost <= HEALTH_COST_MS:
        return confirmed(text)
    return depends(text, when=f"they save the request after a restart but a SELECT 1 costs more "
                              f"than {HEALTH_COST_MS:g} ms here")


@claim("statement-timeout", section=8, notebook=NB,
       guide="'options': '-c statement_timeout=30000',  # 30s query timeout",
       gives=("confirmed", "refuted"))
def statement_timeout(r: Records) -> Verdict:
    """Confirmed when, with the guide's option at a shorter limit, PostgreSQL cancelled a
    longer query (HTTP 504 from the lab's view) before the query's own duration and the
    server answered the next request; refuted otherwise."""
    st = r[NB]["statement timeout"]
    limit, query, elapsed = st["limit ms"], st["query ms"], st["elapsed ms"]
    text = (f"with '-c statement_timeout={limit}' a {query:,} ms query came back as HTTP {st['status']} "
            f"after {elapsed:,.0f} ms and the next request got HTTP {st['next status']}; at the "
            f"guide's 30,000 ms one stuck query may hold a worker for {30_000 / 10:,.0f}x the 10 ms budget")
    if st["status"] == 504 and limit <= elapsed < query and st["next status"] == 200:
        return confirmed(text)
    return refuted(text)


@claim("dj-db-conn-pool", section=8, notebook=NB,
       guide="Connection pooling: pip install django-db-connection-pool; ENGINE "
             "dj_db_conn_pool.backends.postgresql, POOL_SIZE 10, MAX_OVERFLOW 10",
       gives=("confirmed", "refuted", "depends"))
def dj_db_conn_pool(r: Records) -> Verdict:
    """Refuted when the guide's settings raise. Under each server the package pools when
    its requests one at a time reused connections (it opened at most POOL_SIZE, 10, per
    process for them: a count of PostgreSQL backends) and were faster than with
    CONN_MAX_AGE=0, and the server holds at most POOL_SIZE per process after the load; it is
    on par with Django's own pool when it saves at least half of what Django's pool saves
    per request. Confirmed when it pools on par under both servers; refuted when it pools
    under neither; depends otherwise. Throughput is quoted, not compared."""
    m = r[NB]
    error = raised(m["guide's pool"])
    if error:
        return refuted(f"the guide's settings raised {error}")
    rps, held, procs = m["policy rps"], m["connections held"], m["processes"]
    cost, seq = m["new connection ms"], m["one at a time ms"]
    n, opened = m["requests one at a time"], m["connections opened"]
    pools, on_par, parts = [], [], []
    for server in (WSGI, ASGI):
        mine, none, django = (rps[server][p] for p in ("dj-db-conn-pool", "CONN_MAX_AGE=0", "pool"))
        saved, saved_django = _saving(seq[server], "dj-db-conn-pool"), _saving(seq[server], "pool")
        new = opened[server]["dj-db-conn-pool"]
        _, kept = _last(held[server]["dj-db-conn-pool"])
        bound = GUIDE_POOL_SIZE * procs[server]
        if new <= bound and saved > 0 and kept <= bound:
            pools.append(server)
            if saved >= ON_PAR * saved_django:
                on_par.append(server)
        parts.append(f"{NAMES[server]}: {_n(new, 'connection')} opened for {n} requests one at a time, "
                     f"{seq[server]['dj-db-conn-pool']:.1f} ms each "
                     f"(CONN_MAX_AGE=0 {seq[server]['CONN_MAX_AGE=0']:.1f} ms, Django's pool "
                     f"{seq[server]['pool']:.1f} ms), {mine:,.0f} req/s (no pool {none:,.0f}, Django's "
                     f"pool {django:,.0f}), {_n(kept, 'connection')} held")
    text = f"the guide's settings run; a new connection costs {cost:.1f} ms; " + "; ".join(parts)
    if len(on_par) == 2:
        return confirmed(text + "; Django's own pool (5.1+) does the same without the package")
    if not pools:
        return refuted(text)
    if len(pools) == 2:
        slower = [NAMES[s] for s in (WSGI, ASGI) if s not in on_par]
        return depends(text, when=f"it pools, but saves less than half of what Django's own pool "
                                  f"saves per request under {' and '.join(slower)}")
    return depends(text, when=f"it pools under {NAMES[pools[0]]} only")
