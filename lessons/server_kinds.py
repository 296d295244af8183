"""``SERVER_KINDS``: the one table of the servers the lab can run the project under.

Each entry says everything about one kind: the interface it speaks, the Python package
that provides it, the command that starts it, how it is stopped, whether ``threads``
applies and how many workers it takes.  A command serves the lab's application
(``LAB_APPS``) unless it is given another one (``ServerKind.argv``: ``lessons audit``
serves a learner's project with the same commands).  ``Profile`` validates against it, ``LabServer``
launches from it, the widgets panel and the command line list it.  Adding a server kind
is one entry here (and its package in requirements.txt).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lessons.profile import Profile

__all__ = ["LAB_APPS", "SERVER_KINDS", "ServerKind"]

# (profile, port, run dir, application "module:attribute") -> argv after python
Command = Callable[["Profile", int, Path, str], list[str]]

# The application each interface serves in the lab project.
LAB_APPS = {"wsgi": "lab.wsgi:application", "asgi": "lab.asgi:application"}


@dataclass(frozen=True)
class ServerKind:
    interface: str  # "wsgi" or "asgi"
    package: str  # the distribution in requirements.txt
    module: str  # the module that must be importable (the "binary")
    command: Command
    threads: bool = False  # whether Profile.threads applies (threads per worker process)
    max_workers: int | None = None  # None: as many as asked
    # Worker processes besides the master, waited for before the server counts as ready.
    worker_procs: Callable[[Profile], int] = lambda p: p.workers
    # A lab server holds nothing that needs a graceful exit (no request is in flight when
    # it is stopped, nothing is kept), and a graceful exit costs 0.4-2 s per server here
    # (gunicorn's master reaps its workers in 0.1 s steps; uWSGI and hypercorn wait on
    # theirs): the whole process group is killed at once.
    stop_signal: signal.Signals = signal.SIGKILL
    # The command a shell runs it with, in place of `python -c CODE` (None: `python -m`).
    program: str | None = None
    # Modules the command names besides ``module`` (an event loop, an HTTP parser): a
    # project's own interpreter must have them too.
    needs: tuple[str, ...] = ()

    def argv(self, p: Profile, port: int, run_dir: Path, app: str | None = None) -> list[str]:
        """The command after ``python``, serving ``app`` ("module:attribute"; None: the
        lab's application for this kind's interface)."""
        return self.command(p, port, run_dir, app or LAB_APPS[self.interface])


def _gunicorn(worker_class: str) -> Command:
    def build(p: Profile, port: int, run_dir: Path, app: str) -> list[str]:
        argv = ["-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
                "--workers", str(p.workers), "--worker-class", worker_class,
                # gunicorn >= 25 opens a control socket under ~/.gunicorn by default.
                "--no-control-socket", "--worker-tmp-dir", str(run_dir),
                "--graceful-timeout", "3", "--log-level", "warning"]
        if worker_class == "gthread":
            argv += ["--threads", str(p.threads)]
        return argv + list(p.server_args)
    return build


def _uvicorn(p: Profile, port: int, run_dir: Path, app: str) -> list[str]:
    return ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(p.workers), "--loop", "uvloop", "--http", "httptools",
            "--lifespan", "off", "--no-access-log", "--log-level", "warning", *p.server_args]


def _granian(interface: str) -> Command:
    def build(p: Profile, port: int, run_dir: Path, app: str) -> list[str]:
        argv = ["-m", "granian", "--interface", interface, "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(p.workers), "--no-ws",
                "--log-level", "warning"]
        if interface == "wsgi":
            argv += ["--blocking-threads", str(p.threads)]
        else:
            argv += ["--loop", "uvloop"]
        return argv + [*p.server_args, app]
    return build


def _hypercorn(p: Profile, port: int, run_dir: Path, app: str) -> list[str]:
    return ["-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}",
            "--workers", str(p.workers), "--worker-class", "uvloop", *p.server_args]


def _uwsgi(p: Profile, port: int, run_dir: Path, app: str) -> list[str]:
    # pyuwsgi is uWSGI as a Python extension: run() reads sys.argv like the uwsgi binary.
    # Its --http-socket closes the connection after each response without saying so:
    # the header tells the client (gunicorn's sync worker says it too).
    argv = ["-c", "import sys, pyuwsgi; sys.argv[0] = 'uwsgi'; sys.exit(pyuwsgi.run())",
            "--http-socket", f"127.0.0.1:{port}", "--module", app,
            "--master", "--processes", str(p.workers), "--single-interpreter", "--need-app",
            "--die-on-term", "--disable-logging", "--add-header", "Connection: close"]
    if p.threads > 1:
        argv += ["--threads", str(p.threads)]
    return argv + list(p.server_args)


def _daphne(p: Profile, port: int, run_dir: Path, app: str) -> list[str]:
    return ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
            *p.server_args, app]


# WSGI kinds first; the order is the order every list of kinds shows.
SERVER_KINDS: dict[str, ServerKind] = {
    "gunicorn-sync": ServerKind("wsgi", "gunicorn", "gunicorn", _gunicorn("sync")),
    "gunicorn-gthread": ServerKind("wsgi", "gunicorn", "gunicorn", _gunicorn("gthread"), threads=True),
    "granian-wsgi": ServerKind("wsgi", "granian", "granian", _granian("wsgi"), threads=True),
    # The pyuwsgi wheel installs a `uwsgi` command.
    "uwsgi": ServerKind("wsgi", "pyuwsgi", "pyuwsgi", _uwsgi, threads=True, program="uwsgi"),
    # uvicorn runs one worker in its own process (no master) unless asked for more.
    "uvicorn": ServerKind("asgi", "uvicorn", "uvicorn", _uvicorn, needs=("uvloop", "httptools"),
                          worker_procs=lambda p: p.workers if p.workers > 1 else 0),
    "gunicorn-uvicorn": ServerKind("asgi", "uvicorn-worker", "uvicorn_worker",
                                   _gunicorn("uvicorn_worker.UvicornWorker")),
    "gunicorn-asgi": ServerKind("asgi", "gunicorn", "gunicorn", _gunicorn("asgi")),
    "granian-asgi": ServerKind("asgi", "granian", "granian", _granian("asgi"), needs=("uvloop",)),
    "hypercorn": ServerKind("asgi", "hypercorn", "hypercorn", _hypercorn, needs=("uvloop",)),
    "daphne": ServerKind("asgi", "daphne", "daphne", _daphne, max_workers=1, worker_procs=lambda p: 0),
}
