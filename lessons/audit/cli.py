"""``python -m lessons audit PROJECT_DIR ...``: arguments and the run, for
``lessons/__main__.py``'s thin ``audit`` command.

Exit status: 0; 1 when a high-severity finding or an endpoint over the SLO remains (so a
team can put it in CI); 2 with one sentence on stderr for bad input (``AuditError``).
Progress lines go to stderr, so ``--json`` output on stdout stays one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("project", metavar="PROJECT_DIR", help="the directory that holds manage.py")
    p.add_argument("--settings", metavar="MODULE", default=None,
                   help="settings module (default: manage.py's DJANGO_SETTINGS_MODULE)")
    p.add_argument("--python", metavar="PATH", default=None,
                   help="the project's interpreter or virtualenv for its child processes "
                        "(default: this one)")
    p.add_argument("--static", action="store_true",
                   help="static findings only: start no server")
    p.add_argument("--url", action="append", default=[], metavar="PATH",
                   help="a GET path to measure (repeatable; default: the URLconf's "
                        "parameterless routes, at most ten)")
    p.add_argument("--server", action="append", default=[], metavar="KIND",
                   help="a lab server kind to measure under (repeatable; default: gunicorn "
                        "sync and uvicorn)")
    p.add_argument("--database", metavar="URL", default=None,
                   help="the learner's database instead of a fresh one in the lab's PostgreSQL")
    p.add_argument("--fixture", metavar="FILE", type=Path, default=None,
                   help="a fixture loaded into the fresh database")
    p.add_argument("--slo-ms", type=float, default=10.0, help="the SLO on p99, ms (10)")
    p.add_argument("--apply", action="store_true",
                   help="apply the suggested changes one at a time (through the wrapper "
                        "settings, never editing the project) and measure each")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--html", metavar="FILE", type=Path, default=None,
                   help="also write a self-contained HTML report")
    p.add_argument("--locustfile", metavar="FILE", type=Path, default=None,
                   help="also write a locustfile for the audited paths")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(args: argparse.Namespace):  # -> Audit
    """Everything but the printing; raises AuditError on bad input."""
    from lessons.audit.findings import Audit, context_for, static_findings
    from lessons.audit.project import AuditError, locate, read_facts

    if not args.slo_ms > 0:
        raise AuditError(f"--slo-ms {args.slo_ms:g}: the SLO is a positive number of milliseconds.")
    if args.static and (args.apply or args.url or args.server or args.database or args.fixture):
        raise AuditError("--static measures nothing: drop --apply, --url, --server, --database "
                         "and --fixture, or drop --static.")
    if args.fixture is not None and not args.fixture.is_file():
        raise AuditError(f"--fixture {args.fixture}: no such file.")
    project = locate(args.project, settings=args.settings, python=args.python)
    facts = read_facts(project)
    findings = static_findings(context_for(project.root, facts))
    audit = Audit(project=str(project.root), settings=project.settings_module,
                  findings=findings, slo_ms=args.slo_ms)
    if not args.static:
        from lessons import config
        from lessons.audit import measure

        with measure.opened(None, _progress) as lab:   # one lab for both parts
            common = dict(database=args.database, fixture=args.fixture, slo_ms=args.slo_ms,
                          quick=config.quick(), progress=_progress, lab=lab)
            audit.endpoints = measure.measure_endpoints(
                project, facts, paths=args.url or None, servers=args.server or None, **common)
            if args.apply:
                audit.waterfall = measure.apply_waterfall(
                    project, facts, findings, paths=args.url or None, **common)
    if args.locustfile is not None:
        _locustfile(args, facts, audit)
    return audit


def _locustfile(args: argparse.Namespace, facts: dict, audit) -> None:
    """H3's locustfile for the audited paths, at the lowest SLO capacity measured (closed
    loop when nothing was measured), aimed at 127.0.0.1:8000 (edit URL in the file or pass
    ``--host`` to locust for a staging host)."""
    from lessons import locust_export
    from lessons.audit.measure import default_paths
    from lessons.audit.project import AuditError

    paths = list(dict.fromkeys(args.url or [e["path"] for e in audit.endpoints] or default_paths(facts)))
    if not paths:
        raise AuditError("--locustfile needs paths: pass --url (the project has no parameterless route).")
    caps = [e["slo_capacity_rps"] for e in audit.endpoints if e.get("slo_capacity_rps")]
    try:
        locust_export.write_locustfile("http://127.0.0.1:8000", paths, rate=min(caps) if caps else None,
                                       slo_ms=args.slo_ms, out=args.locustfile)
    except (ValueError, OSError) as exc:
        raise AuditError(f"--locustfile {args.locustfile}: {exc}") from None
    _progress(f"wrote {args.locustfile} for {', '.join(paths)} (target http://127.0.0.1:8000; "
              "change its URL for another host)")


def main(args: argparse.Namespace) -> int:
    from lessons.audit.output import html_report, json_report, text_report
    from lessons.audit.project import AuditError

    try:
        audit = _run(args)
        if args.html is not None:
            try:
                args.html.write_text(html_report(audit), encoding="utf-8")
            except OSError as exc:
                raise AuditError(f"--html {args.html}: {exc.strerror}.") from None
            _progress(f"wrote {args.html}")
    except AuditError as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    print(json_report(audit) if args.json else text_report(audit))
    return audit.exit_status()
