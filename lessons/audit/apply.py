"""Measuring ``--apply``'s steps (``lessons.audit.checklist``) as notebook 11 measures its
waterfall (``lessons.measure.waterfall``).

Every step is a configuration (server kind, overrides) with its changes and every one
before it.  One server per step starts (all at once, then pinned; an idle server costs
the others nothing) and each step must answer 200 on every path before anything is
timed: a change that breaks an endpoint (a view that needs the session middleware, a
cache backend that cannot start) is not applied, its sentence is kept, and the steps
after it are measured without it.  Then the whole list is timed ``repeats`` times,
interleaved (step 1, 2, 3..., then again), so that a slow minute of the machine lands on
every step alike (``lessons.audit.timing``); each step's change in SLO capacity and
throughput is judged against the step before it by the lab's own rule
(``lessons.measure.waterfall``: ranges over the repeats apart, throughput also past the
machine's noise).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lessons.audit.serve import ProjectServer, status_problem
from lessons.audit.timing import FIXED_RATE, Plan, Timed, capacity_text, finite, ms, time_endpoint
from lessons.audit.wrapper import Overrides

if TYPE_CHECKING:
    from lessons.audit.checklist import Change
    from lessons.audit.project import Project
    from lessons.lab import Lab

__all__ = ["Config", "configs", "kinds", "importable", "measure_steps"]

OPTIONAL_MODULES = ("psycopg", "psycopg_pool", "django_redis", "redis")


@dataclass(frozen=True)
class Config:
    text: str
    kind: str
    overrides: Overrides

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.overrides.to_json()


def configs(start_text: str, start: tuple[str, Overrides], changes: Sequence[Change]) -> list[Config]:
    """The start, then each change applied on top of the ones before it."""
    kind, overrides = start
    out = [Config(start_text, kind, overrides)]
    for change in changes:
        kind, overrides = change.apply(kind, overrides)
        out.append(Config(change.text, kind, overrides))
    return out


def kinds(start_kind: str, changes: Sequence[Change]) -> list[str]:
    """The server kinds the steps run under (to check their packages before anything starts)."""
    return list(dict.fromkeys(c.kind for c in configs("", (start_kind, Overrides()), changes)))


def importable(project: Project) -> Callable[[str], bool]:
    """Which of ``OPTIONAL_MODULES`` the project's interpreter can import (one child)."""
    code = ("import importlib.util, json\n"
            f"print(json.dumps([m for m in {list(OPTIONAL_MODULES)!r} if importlib.util.find_spec(m)]))")
    found = set(project.run_child(code, purpose="Looking for the database and cache packages"))
    return found.__contains__


def measure_steps(project: Project, start_text: str, start: tuple[str, Overrides],
                  changes: Sequence[Change], paths: Sequence[str], *, lab: Lab, sizes: Plan,
                  slo_ms: float, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Each step's rows (one per path), then one row per change that was not applied."""
    servers: dict[tuple[str, str], ProjectServer] = {}
    try:
        steps, dropped = _start_checked(project, start_text, start, list(changes), paths, lab,
                                        servers, progress)
        timed = _time_all(steps, servers, paths, sizes, slo_ms, progress)
    finally:
        for srv in servers.values():
            srv.stop()
    return _rows(steps, timed, paths) + dropped


def _start_checked(project: Project, start_text: str, start: tuple[str, Overrides],
                   changes: list[Change], paths: Sequence[str], lab: Lab,
                   servers: dict[tuple[str, str], ProjectServer],
                   progress: Callable[[str], None]) -> tuple[list[Config], list[dict[str, Any]]]:
    """Start every step's server and check it answers 200 on every path; drop a change
    that fails (its row says why) and start the later steps again without it."""
    from lessons.audit.project import AuditError

    dropped: list[dict[str, Any]] = []
    while True:
        steps = configs(start_text, start, changes)
        wanted = {s.key for s in steps}
        for key in [k for k in servers if k not in wanted]:
            servers.pop(key).stop()
        problems = _start(project, [s for s in steps if s.key not in servers], lab, servers,
                          attempt=len(dropped))
        for i, step in enumerate(steps):
            problem = problems.get(step.key) or next(
                (p for path in paths if (p := status_problem(servers[step.key], path))), None)
            if problem is None:
                continue
            if i == 0:
                raise AuditError(problem)
            progress(f"--apply: not applied, it breaks the endpoint: {step.text}: {problem}")
            dropped.append({"step": step.text, "change": "not applied", "path": None,
                            "server": step.kind, "slo_capacity_rps": None, "p99_ms": None,
                            "note": problem})
            del changes[i - 1]
            break
        else:
            return steps, dropped


def _start(project: Project, steps: Sequence[Config], lab: Lab,
           servers: dict[tuple[str, str], ProjectServer], *, attempt: int = 0) -> dict[tuple[str, str], str]:
    """Start a server per step at once (``lessons.server.start_each``); the sentence of
    each that could not start, by its step's key.  ``attempt`` (the changes dropped so
    far) is in the names: a later server must not overwrite the log a dropped step names."""
    from lessons.audit.project import AuditError
    from lessons.server import start_each

    again = f"-{attempt}" if attempt else ""
    made = {s.key: ProjectServer(project, s.kind, s.overrides, home=lab.home,
                                 label=f"step-{len(servers) + i}{again}-{s.kind}") for i, s in enumerate(steps)}
    servers.update(made)
    failed = start_each(list(made.values()), lab.cpu_plan.server, expected=AuditError)
    return {key: str(failed[i]) for i, key in enumerate(made) if i in failed}


def _time_all(steps: Sequence[Config], servers: dict[tuple[str, str], ProjectServer],
              paths: Sequence[str], sizes: Plan, slo_ms: float,
              progress: Callable[[str], None]) -> dict[tuple[int, str], list[Timed]]:
    """Every step on every path, ``sizes.repeats`` times, interleaved; each capacity search
    starts where the same step's last one ended, or the step before it's."""
    timed: dict[tuple[int, str], list[Timed]] = {(i, p): [] for i in range(len(steps)) for p in paths}
    for rep in range(sizes.repeats):
        for i, step in enumerate(steps):
            for path in paths:
                mine = timed[(i, path)]
                before = timed.get((i - 1, path)) or []
                start = (mine[-1].capacity.low if mine else 0) or (before[-1].capacity.low if before else 0)
                t = time_endpoint(servers[step.key], path, sizes, slo_ms, start=start or None)
                mine.append(t)
                progress(f"--apply {rep + 1}/{sizes.repeats}, step {i}: {step.text}: {path} "
                         f"SLO capacity {capacity_text(t.capacity.low, t.capacity.high)}, p99 {ms(t.p99_ms)} "
                         "at the fixed rate")
    return timed


def _rows(steps: Sequence[Config], timed: dict[tuple[int, str], list[Timed]],
          paths: Sequence[str]) -> list[dict[str, Any]]:
    """One row per step and path, the change judged by ``lessons.measure.waterfall``."""
    from lessons.measure.waterfall import Step, _judge
    from lessons.profile import Profile

    rows = []
    for path in paths:
        marks = [Step(s.text, Profile(server=s.kind), path) for s in steps]
        found = {i: [t.capacity for t in timed[(i, path)]] for i in range(len(steps))}
        rps = {i: [t.rps for t in timed[(i, path)]] for i in range(len(steps))}
        results, _gap = _judge(marks, found, rps)
        for i, (step, result) in enumerate(zip(steps, results)):
            runs = timed[(i, path)]
            p99s = [t.p99_ms for t in runs if t.p99_ms is not None]
            rows.append({
                "step": step.text, "change": result.change, "path": path, "server": step.kind,
                "slo_capacity_rps": result.low, "slo_capacity_not_shown_at_rps": finite(result.high),
                "p99_ms": statistics.median(p99s) if p99s else None, "p99_rate": FIXED_RATE,
                "rps": result.rps, "throughput_change": result.throughput_change, "repeats": len(runs),
                "non_2xx": sum(t.non_2xx for t in runs),
                "note": "; ".join(dict.fromkeys(t.note for t in runs if t.note)),
            })
    return rows
