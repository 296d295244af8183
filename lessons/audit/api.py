"""The audit as a notebook uses it (notebook 12): one call, one object that shows itself.

``audit_project(path)`` runs what ``python -m lessons audit`` runs (``lessons.audit.cli``):
the static findings (the project read in a child process, never imported here), the
measured endpoints (``measure.measure_endpoints``) and, with ``apply=True``, the
``--apply`` waterfall (``measure.apply_waterfall``), on the notebook's own ``Lab`` so
PostgreSQL and Valkey start once.  The ``ProjectAudit`` it returns is an ``Audit`` (the
CLI's ``--json`` keys and ``exit_status``) with what a notebook shows (tables through
``readable``, plots through ``lessons.plots``) and the comparisons a checkpoint makes:
the findings against the ones a sample project plants (its MISTAKES.md), the thread hops
counted under ASGI against the static prediction (``rules_settings.asgi_hops``, Django's
``load_middleware`` read), and the project's files before and after.

The notebook's widget, ``project_chooser()``, is in ``lessons.audit.chooser``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessons import config
from lessons.audit.findings import SEVERITIES, Audit, Finding

if TYPE_CHECKING:
    from lessons.audit.project import Project
    from lessons.lab import Lab

__all__ = ["SAMPLE_PROJECT", "ProjectAudit", "audit_project", "planted", "tree_digest"]

SAMPLE_PROJECT = config.REPO / "tests" / "sample_project"
SAMPLE_FIXTURE = SAMPLE_PROJECT / "catalog" / "fixtures" / "products.json"
ENDPOINT_COLUMNS = ("interface", "rps", "p99_ms", "slo_capacity_rps", "slo_capacity_not_shown_at_rps",
                    "hops_per_request", "new_threads_per_request", "queries_per_request", "p99_errors")


def _silent(_message: str) -> None:
    """A progress callback that shows nothing."""


def planted(root: Path) -> list[tuple[str, str]] | None:
    """(id, where) of every finding a project's MISTAKES.md plants (the rows between its
    two ``<!-- findings -->`` markers, as tests/test_audit_static.py reads them), sorted;
    None when the project has no such table (a learner's own project)."""
    try:
        parts = (root / "MISTAKES.md").read_text(encoding="utf-8").split("<!-- findings -->")
    except OSError:
        return None
    if len(parts) < 3:
        return None
    rows = []
    for line in parts[1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[a-z][a-z0-9-]+", cells[0]) and cells[0] != "id":
            rows.append((cells[0], cells[2]))
    return sorted(rows)


def tree_digest(root: Path) -> str:
    """SHA-256 over every file's relative path and bytes under ``root`` (Python's
    bytecode caches aside): equal digests, unchanged files."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        h.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass
class ProjectAudit(Audit):
    """An ``Audit`` plus what the notebook shows and checks (see the module's docstring)."""

    root: Path = field(default=SAMPLE_PROJECT)
    located: Project | None = field(default=None, repr=False)
    facts: dict[str, Any] = field(default_factory=dict, repr=False)
    database_url: str = field(default="", repr=False)  # the one the servers used
    seconds: dict[str, float] = field(default_factory=dict)
    digest_before: str = ""
    digest_after: str = ""

    # -- static -----------------------------------------------------------------------

    @property
    def is_sample(self) -> bool:
        """True when this is the lab's sample project (its planted findings are known)."""
        return self.root.resolve() == SAMPLE_PROJECT.resolve()

    def severities(self) -> dict[str, int]:
        """How many findings of each severity."""
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def findings_table(self) -> Any:
        """One row per finding: severity, id, where, what, fix, and the number a notebook
        measured for it (the learner's own records)."""
        import pandas as pd

        from lessons.tables import readable

        table = pd.DataFrame([{"severity": f.severity, "id": f.id, "where": f.where, "what": f.message,
                               "fix": f.fix, "measured": f.evidence} for f in self.findings],
                             columns=["severity", "id", "where", "what", "fix", "measured"],
                             index=range(1, len(self.findings) + 1))
        return readable(table).set_properties(**{"text-align": "left"})

    def planted_differences(self) -> dict[str, list[str]] | None:
        """The findings MISTAKES.md plants that were not reported ("missing") and those
        reported that it does not plant ("not planted"), as "id at where"; None for a
        project without MISTAKES.md."""
        wanted = planted(self.root)
        if wanted is None:
            return None
        found = sorted((f.id, f.where) for f in self.findings)
        missing, extra = list(wanted), []
        for pair in found:
            if pair in missing:
                missing.remove(pair)
            else:
                extra.append(pair)
        return {"missing": [f"{i} at {w}" for i, w in missing],
                "not planted": [f"{i} at {w}" for i, w in extra]}

    # -- measured ---------------------------------------------------------------------

    def endpoint(self, path: str, server: str) -> dict[str, Any]:
        """The measured row of ``path`` under ``server``."""
        if row := next((r for r in self.endpoints if r["path"] == path and r["server"] == server), None):
            return row
        raise KeyError(f"{path} was not measured under {server}: measured "
                       + ", ".join(f"{r['path']} ({r['server']})" for r in self.endpoints))

    def route(self, path: str) -> dict[str, Any]:
        """The URLconf's route of ``path`` (view, is_async, file, line) from the facts."""
        for r in self.facts.get("routes", []):
            if r.get("path") == path:
                return r
        raise KeyError(f"{path} is not a route of the project's URLconf.")

    def endpoints_table(self) -> Any:
        """The measured endpoints (one row per path and server): throughput at saturation,
        p99 at the fixed rate, SLO capacity, and the exact counts per request."""
        import pandas as pd

        from lessons.tables import readable

        if not self.endpoints:
            return readable(pd.DataFrame(columns=list(ENDPOINT_COLUMNS)))
        rate = self.endpoints[0].get("p99_rate")
        table = pd.DataFrame(self.endpoints).reindex(columns=["path", "server", *ENDPOINT_COLUMNS, "note"])
        table = table.set_index(["path", "server"])
        if not any(isinstance(n, str) and n for n in table["note"]):
            table = table.drop(columns="note")
        table = table.rename(columns={"p99_ms": f"p99_ms at {rate:g} req/s",
                                      "p99_errors": f"errors at {rate:g} req/s"})
        return readable(table, caption=f"SLO: p99 < {self.slo_ms:g} ms")

    def hops(self) -> dict[str, dict[str, int]]:
        """Thread hops per request of each endpoint measured under an ASGI server, by
        "PATH under SERVER": ``predicted`` from the project's MIDDLEWARE and the view's
        kind (``asgi_hops``: what Django's handler and middleware do), ``counted`` by
        the lab's counters, and the difference, ``the view's own`` (its async ORM calls,
        a response Django renders through sync_to_async...)."""
        from lessons.audit.rules_settings import asgi_hops

        middleware = [m for m in self.facts.get("middleware", []) if "error" not in m]
        out: dict[str, dict[str, int]] = {"predicted": {}, "counted": {}, "the view's own": {}}
        for row in self.endpoints:
            if row.get("interface") != "asgi":
                continue
            label = f"{row['path']} under {row['server']}"
            predicted = asgi_hops(middleware, view_is_async=bool(self.route(row["path"])["is_async"]))
            out["predicted"][label] = predicted
            out["counted"][label] = row["hops_per_request"]
            out["the view's own"][label] = row["hops_per_request"] - predicted
        return out

    def hops_table(self) -> Any:
        """Predicted and counted hops side by side, one row per endpoint under ASGI."""
        import pandas as pd

        from lessons.tables import readable

        hops = self.hops()
        columns = ["endpoint", "view", "async def", "predicted hops", "counted hops", "the view's own hops"]
        rows = [[label, self.route(label.split(" under ")[0])["view"],
                 bool(self.route(label.split(" under ")[0])["is_async"]),
                 n, hops["counted"][label], hops["the view's own"][label]]
                for label, n in hops["predicted"].items()]
        return readable(pd.DataFrame(rows, columns=columns).set_index("endpoint"))

    def queries(self) -> dict[str, float]:
        """SQL queries per request, by "PATH under SERVER"."""
        return {f"{r['path']} under {r['server']}": r["queries_per_request"] for r in self.endpoints}

    def first_path(self, *, view: str = "def") -> str:
        """The first measured path whose view is a ``def`` view (``view="async"``: an
        ``async def`` one), or the first measured path when none is."""
        paths = list(dict.fromkeys(r["path"] for r in self.endpoints))
        if not paths:
            raise KeyError("Nothing was measured: call measure() first.")
        wanted = view == "async"
        return next((p for p in paths if bool(self.route(p)["is_async"]) == wanted), paths[0])

    def non_2xx(self) -> int:
        """Answers outside 2xx in every timed run (saturation, fixed rate, capacity probes)
        of the endpoints and the --apply steps: a project that breaks under load shows here
        (a timeout is no answer: an overloaded probe may time out)."""
        return int(sum(r.get("non_2xx") or 0 for r in [*self.endpoints, *self.waterfall]))

    def throughput_ratio(self, step: str) -> float | None:
        """The throughput at saturation (median) of the first --apply step whose text starts
        with ``step`` over the step's before it on the same path (None: no such step)."""
        rows = [r for r in self.waterfall if r.get("rps")]
        for i, row in enumerate(rows):
            if row["step"].startswith(step):
                before = [r for r in rows[:i] if r["path"] == row["path"]]
                return row["rps"] / before[-1]["rps"] if before else None
        return None

    def plot_endpoints(self) -> Any:
        """Throughput at saturation, p99 at the fixed rate (its bounds, the SLO line) and
        SLO capacity per endpoint and server (``figures.endpoints_figure``)."""
        from lessons.audit.figures import endpoints_figure

        return endpoints_figure(self.endpoints, self.slo_ms)

    def middleware_without(self, which: str) -> tuple[str, list[str]]:
        """A variant of the project's MIDDLEWARE: without its profilers (``"profilers"``:
        silk, the debug toolbar) or without its sync-only entries (``"sync-only"``; its
        first entry when none is sync-only); returns what was left out (a sentence) and
        the entries kept, in order."""
        from lessons.audit.rules_settings import PROFILERS

        stack = [m for m in self.facts.get("middleware", []) if "error" not in m]
        if which == "profilers":
            gone = [m["path"] for m in stack if m["path"] in PROFILERS.values()]
        elif which == "sync-only":
            gone = [m["path"] for m in stack if not m["async_capable"]] or [m["path"] for m in stack[:1]]
        else:
            raise ValueError(f"which is 'profilers' or 'sync-only', not {which!r}.")
        return ", ".join(gone) or "nothing", [m["path"] for m in stack if m["path"] not in gone]

    def predict_hops(self, middleware: Sequence[str], *, view_is_async: bool) -> int:
        """Thread hops per request under ASGI with ``middleware`` (entries of the project's
        MIDDLEWARE, in order), predicted by ``asgi_hops``."""
        from lessons.audit.rules_settings import asgi_hops

        known = {m["path"]: m for m in self.facts.get("middleware", [])}
        return asgi_hops([known[m] for m in middleware], view_is_async=view_is_async)

    def count(self, path: str, *, lab: Lab, middleware: Sequence[str] | None = None, server: str = "uvicorn",
              requests: int = 10) -> dict[str, float]:
        """Exact counts per request of ``GET path`` under ``server`` (one worker, the lab's
        counters), the project's MIDDLEWARE replaced by ``middleware`` through the wrapper
        settings (never in its files), on the database the measurement used."""
        from lessons import probes
        from lessons.audit.project import AuditError
        from lessons.audit.serve import serving
        from lessons.audit.wrapper import base_overrides
        from lessons.counters import per_request

        if self.located is None or not self.database_url:
            raise AuditError("Nothing was measured: run audit_project(..., measure=True) first.")
        overrides = base_overrides(self.database_url, lab.services.redis_url)
        if middleware is not None:
            overrides = overrides.with_settings(MIDDLEWARE=list(middleware))
        with serving(self.located, [(server, overrides, True)], home=lab.home, cpus=lab.cpu_plan.server) as (srv,):
            probes.request("GET", srv.url, path)  # a first request warms what is lazy
            return per_request(srv.url, path, requests)

    # -- --apply ----------------------------------------------------------------------

    def waterfall_table(self) -> Any:
        """One row per step (and path): the server, the SLO capacity (the highest rate
        that held the SLO in every repeat, and the highest that did not in some) and
        whether it changed beyond the repeats' spread, p99 at the fixed rate (median),
        the throughput (median) and its change."""
        import pandas as pd

        from lessons.tables import readable

        columns = ["path", "server", "slo_capacity_rps", "slo_capacity_not_shown_at_rps", "change", "p99_ms",
                   "rps", "throughput_change"]
        table = pd.DataFrame(self.waterfall, columns=["step", *columns, "note"]).set_index("step")
        if not any(isinstance(n, str) and n for n in table["note"]):
            table = table.drop(columns="note")
        return readable(table)

    def plot_waterfall(self) -> Any:
        """The ``--apply`` steps as SLO-capacity and throughput waterfalls
        (``figures.waterfall_figure``)."""
        from lessons.audit.figures import waterfall_figure

        return waterfall_figure(self.waterfall, self.slo_ms)

    def record(self) -> dict[str, Any]:
        """What a notebook records: the findings' ids and places, the measured rows."""
        return {"project": self.project, "settings": self.settings, "sample": self.is_sample,
                "findings": [[f.id, f.severity, f.where] for f in self.findings],
                "endpoints": list(self.endpoints), "waterfall": list(self.waterfall),
                "exit status": self.exit_status(), "seconds": dict(self.seconds)}

    def measure(self, *, lab: Lab | None = None, paths: Sequence[str] | None = None,
                servers: Sequence[str] | None = None, max_paths: int | None = None,
                database: str | None = None, fixture: Path | None = None,
                progress: Callable[[str], None] | None = print) -> ProjectAudit:
        """The measured endpoints (``measure.measure_endpoints``, what the CLI runs without
        ``--static``): ``paths`` (default: the project's parameterless routes, the first
        ``max_paths`` of them) under ``servers`` (default gunicorn sync and uvicorn), on
        ``lab`` (the notebook's; otherwise one is started and closed).  Returns self."""
        from lessons.audit import measure as measured

        if paths is None and max_paths is not None:
            paths = measured.default_paths(self.facts)[:max_paths] or None
        with self._timed("endpoints", lab, database):
            self.endpoints = measured.measure_endpoints(
                self._project(), self.facts, paths=paths, servers=servers, database=database, fixture=fixture,
                slo_ms=self.slo_ms, quick=config.quick(), progress=progress or _silent, lab=lab)
        return self

    def apply(self, *, lab: Lab | None = None, paths: Sequence[str] | None = None, database: str | None = None,
              fixture: Path | None = None, progress: Callable[[str], None] | None = print) -> ProjectAudit:
        """``--apply`` (``measure.apply_waterfall``): the checklist's changes one at a time
        through the wrapper settings, the SLO capacity and p99 after each, on ``paths``
        (default: the first parameterless route).  Returns self."""
        from lessons.audit import measure as measured

        with self._timed("apply", lab, database):
            self.waterfall = measured.apply_waterfall(
                self._project(), self.facts, self.findings, paths=paths, database=database, fixture=fixture,
                slo_ms=self.slo_ms, quick=config.quick(), progress=progress or _silent, lab=lab)
        return self

    def _project(self) -> Project:
        from lessons.audit.project import locate

        return self.located or locate(self.root, settings=self.settings)

    @contextlib.contextmanager
    def _timed(self, phase: str, lab: Lab | None, database: str | None) -> Iterator[None]:
        """Time ``phase``, note the database the servers use, and digest the project's
        files before the first measurement and after every one."""
        if not self.digest_before:
            self.digest_before = tree_digest(self.root)
        self.database_url = database or _fresh_database_url(self._project(), lab)
        clock = time.monotonic()
        try:
            yield
        finally:
            self.seconds[phase] = time.monotonic() - clock
            self.digest_after = tree_digest(self.root)

    def tree_unchanged(self) -> bool | None:
        """Whether the project's files are as before the audit (None: nothing measured)."""
        return (self.digest_before == self.digest_after) if self.digest_after else None


def audit_project(path: str | Path = SAMPLE_PROJECT, *, settings: str | None = None,
                  python: str | None = None, measure: bool = True, apply: bool = False,
                  lab: Lab | None = None, slo_ms: float = 10.0, **options: Any) -> ProjectAudit:
    """Audit the project at ``path`` as ``python -m lessons audit`` does: the static
    findings, then (``measure``) ``ProjectAudit.measure`` and (``apply``, ``--apply``)
    ``ProjectAudit.apply`` with ``options`` (paths, servers, max_paths, database,
    fixture, progress).  ``measure=False, apply=False`` is ``--static``.  Bad input
    raises ``AuditError`` with one sentence."""
    from lessons.audit.findings import context_for, static_findings
    from lessons.audit.project import locate, read_facts

    clock = time.monotonic()
    project = locate(path, settings=settings, python=python)
    facts = read_facts(project)
    findings: list[Finding] = static_findings(context_for(project.root, facts))
    result = ProjectAudit(project=str(project.root), settings=project.settings_module, findings=findings,
                          slo_ms=slo_ms, root=project.root, located=project, facts=facts)
    result.seconds["static"] = time.monotonic() - clock
    if measure:
        result.measure(lab=lab, **options)
    if apply:
        keep = ("database", "fixture", "progress")
        result.apply(lab=lab, paths=options.get("apply_paths"), **{k: v for k, v in options.items() if k in keep})
    return result


def _fresh_database_url(project: Project, lab: Lab | None) -> str:
    """The URL of the fresh database ``measure`` makes in the lab's PostgreSQL (it is left
    in place afterwards); empty without a lab."""
    from urllib.parse import urlsplit

    from lessons.audit.database import database_name

    if lab is None:
        return ""
    return urlsplit(lab.services.database_url)._replace(path="/" + database_name(project)).geturl()
