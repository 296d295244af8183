"""Static rules on the project's settings and views (see findings.py for the shape).

Every message states what Django 6.1 / psycopg 3.3 / django-redis 7 / redis-py 8 / silk 5.6
do, read from their source; every evidence sentence quotes the learner's own notebook
records (evidence.py).  Thread hops under ASGI are predicted as Django's ``load_middleware``
chains the classes (``asgi_hops``); the measured audit counts them exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from lessons.audit.evidence import Get, cite, ms, rate
from lessons.audit.findings import Context, Finding, rule

__all__ = ["asgi_hops", "project_views"]

PROFILERS = {  # app -> its middleware
    "silk": "silk.middleware.SilkyMiddleware",
    "debug_toolbar": "debug_toolbar.middleware.DebugToolbarMiddleware",
}
NOT_FOR_API = {
    "django.contrib.messages.middleware.MessageMiddleware":
        "the messages framework, which a JSON API does not use",
    "django.middleware.clickjacking.XFrameOptionsMiddleware":
        "the X-Frame-Options header, which matters only for HTML pages a browser could frame",
}
ADMIN_NEEDS = {  # what keeping django.contrib.admin means for each
    "django.contrib.messages.middleware.MessageMiddleware":
        "its check admin.E409 requires it, so serve the admin from a settings module of its own",
    "django.middleware.clickjacking.XFrameOptionsMiddleware":
        "its pages are HTML a browser could frame, so keep it in the settings that serve the admin",
}


def asgi_hops(middleware: list[dict[str, Any]], *, view_is_async: bool) -> int:
    """Thread hops (sync_to_async + async_to_sync) per request under ASGI, as Django's
    load_middleware builds the chain: 2 for the request_started signal and response.close,
    1 for a sync view, 1 per synchronous hook of a MiddlewareMixin running in async mode,
    1 per synchronous process_view, and 1 wherever the chain changes mode."""
    hops = 2 + (0 if view_is_async else 1)
    handler_async = True
    for mw in reversed([m for m in middleware if "error" not in m]):
        can_sync, can_async = mw["sync_capable"], mw["async_capable"]
        mode_async = False if (not handler_async and can_sync) else can_async
        hops += mode_async != handler_async
        hooks = set(mw.get("hooks", ()))
        if mode_async and mw.get("mixin"):
            hops += len(hooks & {"process_request", "process_response"})
        hops += "process_view" in hooks
        handler_async = mode_async
    return hops + (not handler_async)


def project_views(ctx: Context) -> list[dict[str, Any]]:
    """The project's own routes (views defined under its root), one per view."""
    seen, views = set(), []
    for r in ctx.facts.get("routes", []):
        if r.get("in_project") and r["view"] not in seen:
            seen.add(r["view"])
            views.append(r)
    return views


@rule
def debug_on(ctx: Context) -> Iterator[Finding]:
    if not ctx.facts.get("DEBUG"):
        return
    computed = ctx.source.is_literal("DEBUG") is False  # e.g. read from an environment variable
    yield Finding(
        "debug-on", "high", ctx.source.where("DEBUG"),
        ("DEBUG is True in the environment the audit ran in (the settings compute it, and its "
         "default turns it on)" if computed else "DEBUG is True")
        + ": Django wraps every database cursor to time and keep each query (up to 9,000 per "
        "connection in connection.queries) and error pages show tracebacks with local variables.",
        ("Make DEBUG's default False, so that production is safe when the variable is unset, and "
         "turn it on only in development." if computed else
         "Set DEBUG = False in production (read it from the environment), with ALLOWED_HOSTS set."),
        cite("10_profiling", lambda g: _profiler_cost(g, "DEBUG=True")))


def _silk_message(ctx: Context) -> str:
    """What silk 5.6 does per request with this project's SILKY_* settings."""
    silky = ctx.facts.get("SILKY", {})
    chosen = silky.get("SILKY_INTERCEPT_FUNC") or silky.get("SILKY_INTERCEPT_PERCENT", 100) < 100
    text = ("silk's SilkyMiddleware runs outside `if DEBUG:` and, in the request itself, saves "
            + ("the requests SILKY_INTERCEPT_FUNC or SILKY_INTERCEPT_PERCENT select" if chosen
               else "every request but silk's own pages")
            + " with their SQL queries into silk's tables")
    if silky.get("SILKY_PYTHON_PROFILER_FUNC"):
        text += ", and runs cProfile on those SILKY_PYTHON_PROFILER_FUNC selects"
    elif silky.get("SILKY_PYTHON_PROFILER"):
        text += ", and SILKY_PYTHON_PROFILER = True runs cProfile on each of them"
    return text + "."


@rule
def profiler_installed(ctx: Context) -> Iterator[Finding]:
    middleware = ctx.facts.get("MIDDLEWARE", [])
    for app, mw in PROFILERS.items():
        if mw not in middleware:
            continue
        place = ctx.source.where_item("MIDDLEWARE", mw)
        if place.debug_only:
            continue
        if app == "silk":
            severity, message, label = "high", _silk_message(ctx), "silk"
        elif ctx.facts.get("DEBUG"):
            severity, label = "high", "debug toolbar"
            message = ("The debug toolbar's middleware runs outside `if DEBUG:` and, with DEBUG "
                       "on, instruments every request from INTERNAL_IPS (its default "
                       "SHOW_TOOLBAR_CALLBACK).")
        else:
            severity, label = "low", "debug toolbar"
            message = ("The debug toolbar's middleware runs on every request outside `if DEBUG:`; "
                       "it shows nothing while DEBUG is False, and everything as soon as DEBUG is "
                       "turned on for a visitor in INTERNAL_IPS.")
        yield Finding(
            "profiler-installed", severity, place.where, message,
            f"Add {app!r} to INSTALLED_APPS and {mw.rsplit('.', 1)[1]} to MIDDLEWARE only "
            "under `if DEBUG:` (or in a development settings module).",
            cite("10_profiling", lambda g, label=label: _profiler_cost(g, label)))


def _profiler_cost(g: Get, label: str) -> str:
    """Notebook 10's cost of ``label`` (medians of p50 and p99, one request at a time)
    against the same server without it; the toolbar was measured with DEBUG on (it does
    nothing without), so against DEBUG=True alone."""
    toolbar = label == "debug toolbar"
    base = "DEBUG=True" if toolbar else "no profiler"
    return (f"/l10/fast-orders (one query) at p50 {ms(g('cost', label, 'p50_ms'))} and p99 "
            f"{ms(g('cost', label, 'p99_ms'))} with {'the toolbar and DEBUG on' if toolbar else label} "
            f"against {ms(g('cost', base, 'p50_ms'))} and {ms(g('cost', base, 'p99_ms'))} "
            f"{'with DEBUG on alone' if toolbar else 'without'}, one request at a time, medians of "
            f"{g('cost', label, 'runs')} runs")


@rule
def sync_only_middleware(ctx: Context) -> Iterator[Finding]:
    if ctx.interface != "asgi":
        return
    mws = ctx.facts.get("middleware", [])
    now = asgi_hops(mws, view_is_async=False)
    for mw in mws:
        if "error" in mw or mw["async_capable"]:
            continue
        own = bool(mw.get("file")) and not os.path.isabs(mw["file"])  # the project's own code
        yield Finding(
            "sync-only-middleware", "medium", ctx.source.where_item("MIDDLEWARE", mw["path"]).where,
            f"{mw['path']} is sync-only (it does not set async_capable = True), so under ASGI "
            "Django runs it, and every sync-capable middleware listed before it, in a thread; with "
            f"this MIDDLEWARE a sync view makes {now} thread hops per request: "
            f"{asgi_hops([], view_is_async=False)} if all were async-native, "
            f"{asgi_hops([m for m in mws if m is not mw], view_is_async=False)} with only this one "
            "removed (in async mode a MiddlewareMixin runs each hook through sync_to_async).",
            ("Rewrite it in Django's async-capable pattern (sync_capable = async_capable = True, "
             "an async path when get_response is a coroutine function) together with the "
             "MiddlewareMixin ones you keep, or serve sync views with a WSGI server, where "
             "middleware makes no hop." if own else
             "It is not your code: remove it from the production MIDDLEWARE or replace it with "
             "an async-capable equivalent, or serve sync views with a WSGI server, where "
             "middleware makes no hop."),
            cite("05_middleware", lambda g: (
                f"{g('timing middleware hops, in-process', 'asgi', 'guide'):g} hops per request "
                f"under ASGI with the guide's sync TimingMiddleware alone in MIDDLEWARE against "
                f"{g('timing middleware hops, in-process', 'asgi', 'none'):g} with no middleware (a "
                f"def view), and one hop at {g('one hop us (ASGI, in-process)'):.0f} us in process")))


@rule
def middleware_not_for_api(ctx: Context) -> Iterator[Finding]:
    admin = "django.contrib.admin" in ctx.facts.get("INSTALLED_APPS", [])
    for path in ctx.facts.get("MIDDLEWARE", []):
        if path not in NOT_FOR_API:
            continue
        name = path.rsplit(".", 1)[1]
        fix = f"Remove {name} from MIDDLEWARE"
        if admin and path in ADMIN_NEEDS:
            fix += f"; while django.contrib.admin is installed, {ADMIN_NEEDS[path]}"
        yield Finding(
            "middleware-not-for-api", "low", ctx.source.where_item("MIDDLEWARE", path).where,
            f"{name} runs on every request for {NOT_FOR_API[path]}.", fix + ".",
            cite("05_middleware", lambda g, name=name: (
                f"{name} adding {g('per-middleware added us', name, 'WSGI added us'):.0f} us per "
                f"request under WSGI and {g('per-middleware added us', name, 'ASGI added us'):.0f} us "
                f"with {(n := g('per-middleware added us', name, 'ASGI hops')):g} thread "
                f"hop{'' if n == 1 else 's'} under ASGI, in process, "
                "each added to startproject's middleware listed before it")))


def _is_postgres(db: dict[str, Any]) -> bool:
    return "postgresql" in str(db.get("ENGINE", "")) or "postgis" in str(db.get("ENGINE", ""))


def _postgres(ctx: Context) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from ((alias, db) for alias, db in ctx.facts.get("DATABASES", {}).items() if _is_postgres(db))


@rule
def conn_max_age_under_asgi(ctx: Context) -> Iterator[Finding]:
    if ctx.interface != "asgi":
        return
    for alias, db in ctx.facts.get("DATABASES", {}).items():
        age = db.get("CONN_MAX_AGE", 0)
        if age == 0:
            continue
        yield Finding(
            "conn-max-age-under-asgi", "high", ctx.source.where_key("DATABASES", alias, "CONN_MAX_AGE"),
            f"DATABASES[{alias!r}] has CONN_MAX_AGE = {'None (unlimited)' if age is None else age} "
            "while the project is served under "
            f"ASGI ({ctx.served_by}): Django keeps a connection per thread and runs each "
            "request's sync code in a thread of its own, so no later request reuses it and each "
            "stays open until Python frees the dead thread's connection object (Django's docs: "
            "disable persistent connections under ASGI and use pooling).",
            (f"Set CONN_MAX_AGE = 0 on {alias!r} and use Django's native pool: "
             "OPTIONS = {\"pool\": {\"min_size\": 2, \"max_size\": N}} (psycopg 3 and psycopg-pool)."
             if _is_postgres(db) else
             f"Set CONN_MAX_AGE = 0 on {alias!r} (and use a connection pool where its backend has one)."),
            cite("08_db_connections", lambda g: (
                f"{g('connections opened', 'uvicorn', 'CONN_MAX_AGE=60')} connections opened for "
                f"{g('requests one at a time')} requests one at a time under uvicorn with "
                f"CONN_MAX_AGE=60 (gunicorn sync: {g('connections opened', 'gunicorn-sync', 'CONN_MAX_AGE=60')}), "
                f"and {_last(g('connections held', 'uvicorn', 'CONN_MAX_AGE=60'))}")))


def _last(points: dict[str, int]) -> str:
    """``{requests served: connections}`` -> "N still open after M requests" (the last point)."""
    served = max(points, key=int)
    return f"{points[served]} still open after {int(served):,} requests"


@rule
def db_timeouts(ctx: Context) -> Iterator[Finding]:
    for alias, db in _postgres(ctx):
        options = db.get("OPTIONS") or {}
        where = ctx.source.where_key("DATABASES", alias, "OPTIONS")
        if "connect_timeout" not in options:
            yield Finding(
                "db-no-connect-timeout", "medium", where,
                f"DATABASES[{alias!r}] sets no connect_timeout: when the database host does not "
                f"answer, {_connect_wait(ctx, options)}.",
                f"Add \"connect_timeout\": 3 (seconds) to DATABASES[{alias!r}]['OPTIONS'] "
                "(or set PGCONNECT_TIMEOUT in the server's environment).",
                cite("08_db_connections", lambda g: (
                    f"a new connection (with a SELECT 1) at {ms(g('new connection ms'))} here when "
                    "the database answers; a host that does not answer is not measured by the lab")))
        if "statement_timeout" not in str(options.get("options", "")):
            yield Finding(
                "db-no-statement-timeout", "medium", where,
                f"DATABASES[{alias!r}] sets no statement_timeout: PostgreSQL's default is 0 (no "
                "limit), so one slow query holds its worker and its connection for as long as it runs.",
                f"Add \"options\": \"-c statement_timeout=5000\" (ms) to DATABASES[{alias!r}]['OPTIONS'] "
                "(or ALTER ROLE ... SET statement_timeout on the server).",
                cite("08_db_connections", lambda g: (
                    f"a request running a {g('statement timeout', 'query ms'):,.0f} ms query answered "
                    f"HTTP {g('statement timeout', 'status')} after {ms(g('statement timeout', 'elapsed ms'))} "
                    f"with statement_timeout = {g('statement timeout', 'limit ms'):,.0f} ms, and the next "
                    f"request answered {g('statement timeout', 'next status')}")))


def _connect_wait(ctx: Context, options: dict[str, Any]) -> str:
    """How long a connect to a silent host waits without connect_timeout, by driver:
    psycopg 3 connects non-blocking and stops each attempt after its own default
    (``_DEFAULT_CONNECT_TIMEOUT = 130`` in psycopg/conninfo.py); psycopg2 calls libpq's
    blocking connect, where unset means no limit of libpq's own."""
    version = ctx.facts.get("versions", {}).get("psycopg")
    if not version:
        return ("libpq sets no limit of its own (unset means wait indefinitely): a request "
                "waits until the operating system gives up the TCP connect (about 2 minutes on Linux)")
    text = f"psycopg {version} gives up each connection attempt only after its default of 130 s"
    if options.get("pool"):
        return text + ", while requests wait for the pool's connections up to its timeout"
    return text + ", and the request waits all that time"


@rule
def pool_size(ctx: Context) -> Iterator[Finding]:
    threads = max((c.setting("threads", ctx.cores) or 1 for c in ctx.commands), default=1)
    workers = ctx.workers()
    for alias, db in _postgres(ctx):
        pool = (db.get("OPTIONS") or {}).get("pool")
        if not pool:
            continue
        conf = pool if isinstance(pool, dict) else {}
        size = conf.get("max_size", conf.get("min_size", 4))
        timeout = conf.get("timeout", 30)
        problems = []
        if pool is True:
            problems.append("pool = True takes psycopg_pool's defaults: min_size 4, max_size = "
                            "min_size, and a 30 s wait for a free connection")
        if isinstance(threads, int) and threads > size:
            problems.append(f"each worker runs {threads} threads but pools {size} connections, which "
                            "Django holds from a request's first query to its end, so beyond "
                            f"{size} such requests at once the next waits up to {timeout} s")
        if workers and workers * size > 100:
            problems.append(f"{workers} workers x {size} = {workers * size} connections exceed "
                            "PostgreSQL's default max_connections of 100")
        if not problems:
            continue
        yield Finding(
            "pool-size", "medium", ctx.source.where_key("DATABASES", alias, "OPTIONS", "pool"),
            f"DATABASES[{alias!r}]: " + "; ".join(problems) + ".",
            "Size the pool explicitly: {\"pool\": {\"min_size\": n, \"max_size\": N, \"timeout\": 2}} "
            "with N at least the threads (or concurrent requests) per worker and workers x N "
            "under the server's max_connections.",
            cite("08_db_connections", lambda g: (
                f"{len(g('pool waits ms', 'pool: True (4)'))} concurrent requests on one uvicorn "
                "worker with pool = True waiting "
                + ", ".join(f"{w:g}" for w in g("pool waits ms", "pool: True (4)"))
                + " ms for a connection")))


@rule
def redis_parser_class(ctx: Context) -> Iterator[Finding]:
    redis = ctx.facts.get("versions", {}).get("redis")
    for alias, cache in ctx.facts.get("CACHES", {}).items():
        parser = (cache.get("OPTIONS") or {}).get("PARSER_CLASS")
        if not parser:
            continue
        where = ctx.source.where_key("CACHES", alias, "OPTIONS", "PARSER_CLASS")
        error = cache.get("parser_error")
        yield Finding(
            "redis-parser-class", "high" if error else "low", where,
            (f"CACHES[{alias!r}] PARSER_CLASS {parser!r} does not import "
             + (f"with redis-py {redis}" if redis else "here (redis-py is not installed)")
             + f" ({error}); django-redis imports it when it first connects, at the first cache "
             "call of each process, and keeps no client when that fails, so every cache call "
             "raises ImportError." if error else
             f"CACHES[{alias!r}] sets PARSER_CLASS {parser!r}, which redis-py {redis} does not need."),
            "Remove PARSER_CLASS: redis-py uses hiredis by itself when the hiredis package is installed.",
            cite("07_caching", lambda g: (
                f"the guide's PARSER_CLASS raising {g('guide PARSER_CLASS', 'raised')}, and without "
                f"it redis-py chose {g('parser us', 'default parser')} ({g('parser us', 'default'):.0f} us "
                f"per GET against {g('parser us', 'python'):.0f} us with its pure-Python parser)")))


@rule
def locmem_several_workers(ctx: Context) -> Iterator[Finding]:
    workers = ctx.workers()
    if not workers or workers < 2:
        return
    formula = next((c.workers_formula() for c in ctx.commands if c.workers(ctx.cores) == workers), "")
    for alias, cache in ctx.facts.get("CACHES", {}).items():
        if not str(cache.get("BACKEND", "")).endswith("LocMemCache"):
            continue
        yield Finding(
            "locmem-several-workers", "medium", ctx.source.where_key("CACHES", alias, "BACKEND"),
            f"CACHES[{alias!r}] is LocMemCache, which lives in each process: with {workers} workers "
            f"({formula}, on this machine's {ctx.cores} cores) each fills its own copy, and a value "
            "set or deleted in one worker is unseen by the others.",
            "Use a shared cache (django-redis or Django's RedisCache) for data that must agree "
            "across workers; keep LocMem for per-process data that may differ.",
            cite("07_caching", lambda g: (
                f"{g('two workers', 'LocMem', 'misses')} misses in {g('two workers', 'LocMem', 'requests')} "
                f"requests on one key behind {g('two workers', 'LocMem', 'workers that answered')} "
                f"workers with LocMem against {g('two workers', 'django-redis', 'misses')} with django-redis")))


def _views_evidence(g: Get, kind: str) -> str:
    rps = g("rps", kind)
    return (f"one worker serving the lab's {kind} with startproject's middleware at "
            f"{rate(rps['gunicorn-sync'])} under gunicorn sync (WSGI) and {rate(rps['uvicorn'])} "
            "under uvicorn (ASGI)")


@rule
def views_and_interface(ctx: Context) -> Iterator[Finding]:
    views = project_views(ctx)
    sync = [v for v in views if not v["is_async"]]
    asyn = [v for v in views if v["is_async"]]
    if ctx.interface == "asgi" and sync:
        hops = asgi_hops(ctx.facts.get("middleware", []), view_is_async=False)
        yield Finding(
            "sync-views-under-asgi", "medium", f"{sync[0]['file']}:{sync[0]['line']}",
            f"{len(sync)} of the project's {len(views)} views are sync and served under ASGI "
            f"({ctx.served_by}): Django runs each in a thread, {hops} thread hops per request "
            "with this MIDDLEWARE.",
            "Serve a mostly-sync project with a WSGI server (gunicorn sync or gthread workers), "
            "where sync views make no hop, or make the hot views async def.",
            cite("01_asgi_vs_wsgi", lambda g: _views_evidence(g, "sync view")))
    if ctx.interface == "wsgi" and asyn:
        yield Finding(
            "async-views-under-wsgi", "medium", f"{asyn[0]['file']}:{asyn[0]['line']}",
            f"{len(asyn)} of the project's {len(views)} views are async def and served under WSGI "
            f"({ctx.served_by}): Django runs each through async_to_sync, which starts a new "
            "event loop in a new thread for every request.",
            "Make them def views while the project is served by a WSGI server, or serve it with an "
            "ASGI server if the async views wait on slow I/O.",
            cite("01_asgi_vs_wsgi", lambda g: _views_evidence(g, "async view")))
    if ctx.interface is None and views:
        yield Finding(
            "server-command-not-found", "low", "Procfile, Dockerfile, *.sh, gunicorn.conf.py",
            f"No server command was found, so the audit cannot tell whether the project's "
            f"{len(sync)} sync and {len(asyn)} async views are served under WSGI or ASGI.",
            "Keep the production server command in the repository (Procfile, Dockerfile CMD or "
            "gunicorn.conf.py) so it can be checked; sync views suit WSGI, async ones ASGI.",
            cite("01_asgi_vs_wsgi", lambda g: _views_evidence(g, "sync view")))
