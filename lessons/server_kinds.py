"""``SERVER_KINDS``: the one table of the servers the lab can run the project under.

Each entry says everything about one kind: the interface it speaks, the Python package
that provides it, the command that starts it, how it is stopped, whether ``threads``
applies and how many workers it takes.  ``Profile`` validates against it, ``LabServer``
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

__all__ = ["SERVER_KINDS", "ServerKind"]

Command = Callable[["Profile", int, Path], list[str]]  # (profile, port, run dir) -> argv after python


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


def _gunicorn(worker_class: str, app: str) -> Command:
    def build(p: Profile, port: int, run_dir: Path) -> list[str]:
        argv = ["-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
                "--workers", str(p.workers), "--worker-class", worker_class,
                # gunicorn >= 25 opens a control socket under ~/.gunicorn by default.
                "--no-control-socket", "--worker-tmp-dir", str(run_dir),
                "--graceful-timeout", "3", "--log-level", "warning"]
        if worker_class == "gthread":
            argv += ["--threads", str(p.threads)]
        return argv + list(p.server_args)
    return build


def _uvicorn(p: Profile, port: int, run_dir: Path) -> list[str]:
    return ["-m", "uvicorn", "lab.asgi:application", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(p.workers), "--loop", "uvloop", "--http", "httptools",
            "--lifespan", "off", "--no-access-log", "--log-level", "warning", *p.server_args]


def _granian(interface: str) -> Command:
    def build(p: Profile, port: int, run_dir: Path) -> list[str]:
        argv = ["-m", "granian", "--interface", interface, "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(p.workers), "--no-ws",
                "--log-level", "warning"]
        if interface == "wsgi":
            argv += ["--blocking-threads", str(p.threads)]
        else:
            argv += ["--loop", "uvloop"]
        return argv + [*p.server_args, f"lab.{interface}:application"]
    return build


def _hypercorn(p: Profile, port: int, run_dir: Path) -> list[str]:
    return ["-m", "hypercorn", "lab.asgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", str(p.workers), "--worker-class", "uvloop", *p.server_args]


def _uwsgi(p: Profile, port: int, run_dir: Path) -> list[str]:
    # pyuwsgi is uWSGI as a Python extension: run() reads sys.argv like the uwsgi binary.
    # Its --http-socket closes the connection after each response without saying so:
    # the header tells the client (gunicorn's sync worker says it too).
    argv = ["-c", "import sys, pyuwsgi; sys.argv[0] = 'uwsgi'; sys.exit(pyuwsgi.run())",
            "--http-socket", f"127.0.0.1:{port}", "--module", "lab.wsgi:application",
            "--master", "--processes", str(p.workers), "--single-interpreter", "--need-app",
            "--die-on-term", "--disable-logging", "--add-header", "Connection: close"]
    if p.threads > 1:
        argv += ["--threads", str(p.threads)]
    return argv + list(p.server_args)


def _daphne(p: Profile, port: int, run_dir: Path) -> list[str]:
    return ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
            *p.server_args, "lab.asgi:application"]


_WSGI_APP, _ASGI_APP = "lab.wsgi:application", "lab.asgi:application"

# WSGI kinds first; the order is the order every list of kinds shows.
SERVER_KINDS: dict[str, ServerKind] = {
    "gunicorn-sync": ServerKind("wsgi", "gunicorn", "gunicorn", _gunicorn("sync", _WSGI_APP)),
    "gunicorn-gthread": ServerKind("wsgi", "gunicorn", "gunicorn", _gunicorn("gthread", _WSGI_APP),
                                   threads=True),
    "granian-wsgi": ServerKind("wsgi", "granian", "granian", _granian("wsgi"), threads=True),
    # The pyuwsgi wheel installs a `uwsgi` command.
    "uwsgi": ServerKind("wsgi", "pyuwsgi", "pyuwsgi", _uwsgi, threads=True, program="uwsgi"),
    # uvicorn runs one worker in its own process (no master) unless asked for more.
    "uvicorn": ServerKind("asgi", "uvicorn", "uvicorn", _uvicorn,
                          worker_procs=lambda p: p.workers if p.workers > 1 else 0),
    "gunicorn-uvicorn": ServerKind("asgi", "uvicorn-worker", "uvicorn_worker",
                                   _gunicorn("uvicorn_worker.UvicornWorker", _ASGI_APP)),
    "gunicorn-asgi": ServerKind("asgi", "gunicorn", "gunicorn", _gunicorn("asgi", _ASGI_APP)),
    "granian-asgi": ServerKind("asgi", "granian", "granian", _granian("asgi")),
    "hypercorn": ServerKind("asgi", "hypercorn", "hypercorn", _hypercorn),
    "daphne": ServerKind("asgi", "daphne", "daphne", _daphne, max_workers=1, worker_procs=lambda p: 0),
}
