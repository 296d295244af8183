"""The measured part of ``python -m lessons audit``: the learner's endpoints under the lab's
servers, with the lab's own load generator and counters.

For each path (``--url``; default: the project's own parameterless routes, at most ten)
and server kind (default gunicorn sync and uvicorn; any kind of ``SERVER_KINDS`` on
request), the project runs through the wrapper settings (``lessons.audit.wrapper``) on
the audit's database (``lessons.audit.database``), one worker pinned to the server's CPU
as in the notebooks.  Two servers per kind start together: one with the lab's counters
(``lab/instrument.py``), which gives the exact thread hops, new threads and SQL queries
per request (``lessons.counters.per_request``), and one without, which is timed
(``lessons.audit.timing``: throughput, p99 at a fixed rate, SLO capacity), as the
notebooks time servers with the counters off.

``apply_waterfall`` (``--apply``) measures the guide's checklist on the project the way
notebook 11 measures it on the lab's (``lessons.audit.checklist`` says which changes,
``lessons.audit.apply`` measures them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessons.audit.database import prepare
from lessons.audit.serve import DEFAULT_KINDS, ProjectServer, check_kinds, serving, status_problem
from lessons.audit.timing import FIXED_RATE, Plan, capacity_text, ms, plan, time_endpoint
from lessons.audit.wrapper import base_overrides

if TYPE_CHECKING:
    from lessons.audit.findings import Finding
    from lessons.audit.project import Project
    from lessons.lab import Lab

__all__ = ["MAX_DEFAULT_PATHS", "default_paths", "measure_endpoints", "apply_waterfall"]

MAX_DEFAULT_PATHS = 10


def default_paths(facts: dict[str, Any]) -> list[str]:
    """The project's own parameterless GET routes (views defined in the project, not in
    the admin or an installed package), in URLconf order, at most ``MAX_DEFAULT_PATHS``."""
    found: list[str] = []
    for route in facts.get("routes", []):
        path = str(route.get("path", ""))
        if route.get("has_params") or not route.get("in_project") or path in found:
            continue
        if any(c in path for c in "^$\\()[]{}*+?|"):  # a regex route that is not a plain path
            continue
        found.append(path)
    return found[:MAX_DEFAULT_PATHS]


def measure_endpoints(project: Project, facts: dict, *, paths: Sequence[str] | None,
                      servers: Sequence[str] | None, database: str | None, fixture: Path | None,
                      slo_ms: float, quick: bool, progress: Callable[[str], None],
                      lab: Lab | None = None) -> list[dict]:
    """One row per path and server kind (see the module's docstring).  ``lab``: an open
    ``Lab`` to use (a notebook's); without it one is started and closed here."""
    from lessons.audit.project import AuditError

    kinds = list(dict.fromkeys(servers or DEFAULT_KINDS))
    check_kinds(project, kinds)
    wanted = _paths(paths, facts)
    sizes = plan(quick)
    with opened(lab, progress) as the_lab:
        url = prepare(project, the_lab, database=database, fixture=fixture, progress=progress)
        overrides = base_overrides(url, the_lab.services.redis_url)
        progress(f"servers: {', '.join(kinds)}, one worker each ({the_lab.cpu_plan.note}), your settings "
                 "with the wrapper's overrides (DEBUG = False, the audit's database, Redis caches on "
                 "the lab's Valkey)")
        configs = [(k, overrides, False) for k in kinds] + [(k, overrides, True) for k in kinds]
        with serving(project, configs, home=the_lab.home, cpus=the_lab.cpu_plan.server) as started:
            timed, counted = started[:len(kinds)], started[len(kinds):]
            usable = _answering(wanted, timed, explicit=bool(paths), progress=progress)
            if not usable:
                raise AuditError("None of the project's parameterless routes answers 200 "
                                 "(see the lines above): pass --url with a path that does.")
            return [_measure(t, c, path, sizes, slo_ms, progress)
                    for path in usable for t, c in zip(timed, counted)]


def _paths(paths: Sequence[str] | None, facts: dict) -> list[str]:
    from lessons.audit.project import AuditError

    if paths:
        bad = [p for p in paths if not p.startswith("/") or any(c in p for c in " \r\n")]
        if bad:
            raise AuditError(f"--url {bad[0]!r} is not a path: give it as /api/items/ (one "
                             f"--url per path, percent-encoded, starting with /).")
        return list(dict.fromkeys(paths))
    found = default_paths(facts)
    if not found:
        raise AuditError("The project's URLconf has no parameterless route of its own: pass "
                         "--url with the paths to measure (e.g. --url /api/items/).")
    return found


@contextlib.contextmanager
def opened(lab: Lab | None, progress: Callable[[str], None]) -> Iterator[Lab]:
    """``lab``, or a lab started here (PostgreSQL, Valkey) and closed at the end."""
    if lab is not None:
        yield lab
        return
    from lessons.lab import Lab

    progress("lab: starting PostgreSQL and Valkey")
    with Lab(quiet=True) as started:
        yield started


def _answering(paths: list[str], servers: Sequence[ProjectServer], *, explicit: bool,
               progress: Callable[[str], None]) -> list[str]:
    """The paths that answer 200 under every server.  A path the learner gave that does
    not is one sentence (AuditError); a default route that does not is left out, said."""
    from lessons.audit.project import AuditError

    usable = []
    for path in paths:
        problem = next((p for srv in servers if (p := status_problem(srv, path))), None)
        if problem is None:
            usable.append(path)
        elif explicit:
            raise AuditError(problem)
        else:
            progress(f"skipped: {problem}")
    return usable


def _measure(timed: ProjectServer, counted: ProjectServer, path: str, sizes: Plan, slo_ms: float,
             progress: Callable[[str], None]) -> dict[str, Any]:
    """One endpoint under one server kind: exact counts, then the timings."""
    from lessons import probes
    from lessons.counters import per_request

    probes.request("GET", counted.url, path)  # a first request warms what is lazy
    counts = per_request(counted.url, path, sizes.counted)
    t = time_endpoint(timed, path, sizes, slo_ms)
    row = {"path": path, "server": timed.kind, "interface": timed.profile.interface,
           "app": timed.app, **t.row(), "slo_ms": slo_ms,
           "hops_per_request": counts["sync_to_async"] + counts["async_to_sync"],
           "sync_to_async": counts["sync_to_async"], "async_to_sync": counts["async_to_sync"],
           "new_threads_per_request": counts["threads_started"],
           "queries_per_request": counts["queries"], "counted_requests": counts["requests"]}
    capacity = capacity_text(t.capacity.low, t.capacity.high)
    progress(f"{path} under {timed.kind}: {t.rps:,.0f} req/s at saturation, p99 {ms(t.p99_ms)} "
             f"at {FIXED_RATE:g} req/s, SLO capacity {capacity}; per request "
             f"{row['hops_per_request']} hops, {row['queries_per_request']} queries"
             + (f" ({t.note})" if t.note else ""))
    return row


def apply_waterfall(project: Project, facts: dict, findings: list[Finding], *,
                    paths: Sequence[str] | None, database: str | None, fixture: Path | None,
                    slo_ms: float, quick: bool, progress: Callable[[str], None],
                    lab: Lab | None = None) -> list[dict]:
    """The checklist's changes, applied one at a time through the wrapper settings (the
    project's files are never touched), each step's SLO capacity and p99 measured; one
    row per step and path.  ``paths``: default, the project's first parameterless route."""
    from lessons.audit import apply, checklist

    wanted = _paths(paths, facts) if paths else _paths(None, facts)[:1]  # default: the first route
    kind, where = checklist.start_kind(project)
    changes = checklist.changes(project, facts, findings, wanted, apply.importable(project), progress,
                                start=kind)
    check_kinds(project, apply.kinds(kind, changes))
    with opened(lab, progress) as the_lab:
        url = prepare(project, the_lab, database=database, fixture=fixture, progress=progress)
        start = (kind, base_overrides(url, the_lab.services.redis_url))
        return apply.measure_steps(project, f"start: the project's settings under {kind} ({where})",
                                   start, changes, wanted, lab=the_lab, sizes=plan(quick),
                                   slo_ms=slo_ms, progress=progress)
