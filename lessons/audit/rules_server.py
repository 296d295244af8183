"""Static rules on the server command (sources.py found it; findings.py has the shape).

Checked against gunicorn 27 (defaults: workers 1 or WEB_CONCURRENCY, max_requests 0,
preload_app False; without preload each worker imports the application in
``init_process`` when it boots) and uvicorn 0.54 (``uvicorn/workers.py`` warns
"The `uvicorn.workers` module is deprecated" on import).
"""

from __future__ import annotations

from collections.abc import Iterator

from lessons.audit.evidence import Get, cite, ms, ratio, rate
from lessons.audit.findings import Context, Finding, rule


@rule
def uvicorn_worker_deprecated(ctx: Context) -> Iterator[Finding]:
    version = ctx.facts.get("versions", {}).get("uvicorn")
    uvicorn = f"uvicorn {version}" if version else "uvicorn"
    for c in ctx.commands:
        wc = c.worker_class
        if c.program != "gunicorn" or not wc.startswith("uvicorn.workers."):
            continue
        yield Finding(
            "uvicorn-worker-deprecated", "medium", c.options["worker_class"].where,
            f"worker_class {wc} comes from the uvicorn.workers module, which {uvicorn} marks "
            "deprecated: importing it warns \"The `uvicorn.workers` module is deprecated. Please "
            "use `uvicorn-worker` package instead.\"",
            "Use worker_class = \"uvicorn_worker.UvicornWorker\" (pip install uvicorn-worker), "
            "or gunicorn's own \"asgi\" worker.",
            cite("02_production_server", lambda g: (
                f"the guide's class serving {ratio(g('worker class', 'rps ratio'))} times the req/s "
                "of uvicorn_worker.UvicornWorker, one process each: the two classes are the same "
                "code, so that difference is the run's noise and the switch is for support, not speed")))


@rule
def workers_over_cores(ctx: Context) -> Iterator[Finding]:
    for c in ctx.commands:
        n = c.workers(ctx.cores)
        if not c.asyncio_workers or n is None or n <= ctx.cores:
            continue
        opt = c.options.get("workers")
        per_core = opt is not None and opt.value(1) != opt.value(2)  # the count follows the cores
        count = (f"{n} on this machine's {ctx.cores} cores" if per_core else
                 f"more than one per core on a machine with fewer than {n} cores, as this one with {ctx.cores}")
        env = c.workers_env()
        yield Finding(
            "workers-over-cores", "medium" if per_core else "low", opt.where if opt else c.where,
            f"{c.describe()} starts {c.workers_formula()} event-loop workers ({count}"
            + (f", while {env} is unset" if env else "")
            + "): (2 x cores) + 1 is gunicorn's starting point for sync workers, which block "
            "while they wait, but an event-loop worker does not block, so processes beyond one "
            "per core only compete for the same cores.",
            "Start with one worker per core for event-loop workers "
            "(e.g. workers = len(os.sched_getaffinity(0))) and measure before adding more.",
            cite("02_production_server", _sweep))


def _sweep(g: Get) -> str:
    rps, cores, gain = g("async sweep rps"), g("sync sweep", "cores"), g("async sweep", "dedicated-core gain")
    most = max(rps, key=int)
    return (f"{most} event-loop processes on {cores} core{'' if cores == 1 else 's'} serving "
            f"{rate(rps[most])} against {rate(rps['1'])} for one (an async view awaiting 5 ms; "
            f"on a core of their own, an estimated {ratio(gain)} times one process's req/s)")


@rule
def max_requests_without_preload(ctx: Context) -> Iterator[Finding]:
    for c in ctx.commands:
        n = c.setting("max_requests", ctx.cores)
        if c.program != "gunicorn" or not isinstance(n, int) or n <= 0:
            continue
        if c.setting("preload_app", ctx.cores) in (True, "True", "true"):
            continue
        jitter = c.setting("max_requests_jitter", ctx.cores)
        yield Finding(
            "max-requests-without-preload", "low", c.options["max_requests"].where,
            f"max_requests = {n}" + (f" (jitter {jitter})" if jitter else "")
            + " replaces each worker after that many requests, and without preload_app the new "
            "worker imports the project before it serves again.",
            "Keep max_requests only against a real memory leak, with an N that fits your "
            "traffic, and add preload_app = True so a restart is a fork of the master that "
            "already imported the project (then a HUP no longer loads new code: restart the "
            "master to deploy).",
            cite("02_production_server", lambda g: (
                f"{g('recycling', 'restarts')} restarts in {g('recycling', 'requests'):,} requests "
                f"with --max-requests {g('recycling', 'max requests')} on one sync worker: "
                f"{ratio(g('recycling', 'rps ratio'))} times the req/s without recycling, and a "
                f"slowest request of {ms(g('recycling', 'max ms', 'recycling'))} against "
                f"{ms(g('recycling', 'max ms', 'none'))}")))
