"""``LabServer``: the lab Django project running under a real production server.

One class starts any of the server kinds (``lessons.server_kinds``) on 127.0.0.1,
pinned to the server's CPU set, with the profile's ``LAB_*`` environment; it is ready
when ``/healthz`` answers and every worker process is up.  It always stops its whole
process group: on ``stop()``, on leaving a ``with`` block, at interpreter exit, and
(through the reaper in ``lessons.procs``) when the notebook kernel dies.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import psutil

from lessons import config, procs
from lessons import cpus as _cpus
from lessons.profile import Profile
from lessons.server_kinds import SERVER_KINDS
from lessons.services import free_port, port_in_use, tail

__all__ = ["HttpProcess", "LabServer", "ServerError", "Upstream", "start_each", "start_together"]


class ServerError(RuntimeError):
    """The server could not start; the message says why and what to do."""


class HttpProcess:
    """A process serving HTTP on 127.0.0.1, ready when ``health_path`` answers 200.

    Subclasses say what to run (``_argv``, ``_env``, ``_program``) and how many worker
    processes to wait for; this class starts it through ``procs.spawn`` (own session,
    reaper-watched, pinned), waits, and stops the whole process group.
    """

    name = "server"
    health_path = "/healthz"
    # Nothing in a lab process needs a graceful exit: the whole process group is killed
    # at once (a LabServer takes its kind's signal: lessons.server_kinds says why).
    stop_signal = signal.SIGKILL

    def __init__(self, *, port: int | None = None, cpus: frozenset[int] | None = None,
                 home: Path | None = None, ready_timeout: float = 30.0) -> None:
        self.port = port
        self.cpus = cpus
        self.home = home or config.lab_home()
        self.ready_timeout = ready_timeout
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- what to run (subclasses) ---------------------------------------------------

    def _argv(self, port: int) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return {}

    def _workers(self) -> int:
        return 0

    def _program(self) -> tuple[str, Path]:
        """The interpreter and the working directory (``python -m`` puts the latter first
        on ``sys.path``): this venv's and the lab project's."""
        return sys.executable, config.LAB_PROJECT

    def _preflight(self) -> None:
        """Raise a clear error before anything starts."""

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            return self
        self._preflight()
        if self.port is None:
            self.port = free_port()
        elif port_in_use(self.port):
            raise ServerError(
                f"Port {self.port} on 127.0.0.1 is already in use: pick another port, or leave "
                f"it out to get a free one."
            )
        (self.home / "run").mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_bytes(b"")  # a fresh log per start: errors shown are this run's
        env = {**os.environ, "PYTHONPATH": str(config.LAB_PROJECT), **self._env()}
        python, cwd = self._program()
        t0 = time.monotonic()
        self._proc = procs.spawn([python, *self._argv(self.port)], env=env,
                                 cwd=cwd, log=self.log_path, cpus=self.cpus,
                                 stop_signal=self.stop_signal)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop the process and all its workers.  Safe to call twice."""
        if self._proc is not None:
            procs.stop(self._proc)
            self._proc = None

    def pin(self, cpus: frozenset[int] | None) -> None:
        """Pin every thread of every process to ``cpus`` (None: leave them): a server
        started unpinned (several at once, on every CPU) moves to where it is measured."""
        if cpus is None:
            return
        for proc in self.processes():
            try:
                for thread in proc.threads():
                    _cpus.pin(cpus, thread.id)
            except psutil.Error:  # a process that just ended
                pass
        self.cpus = cpus

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- facts ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServerError(f"The {self.name} is not started: call start() or use `with`.")
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
        """The end of this process's log (stdout and stderr)."""
        return tail(self.log_path, lines)

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<{type(self).__name__} {self.name} {state}>"

    # -- readiness ------------------------------------------------------------------

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not self._healthz():
            self._check_alive()
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name} did not answer {self.health_path} within {self.ready_timeout:.0f} s; "
                    f"the end of its log:\n{self.logs(20)}"
                )
            time.sleep(0.05)
        # It answers as soon as one worker is up; wait for the others too, so the
        # first measured requests do not land on a worker still importing Django.
        while len(self.processes()) - 1 < self._workers() and time.monotonic() < deadline:
            self._check_alive()
            time.sleep(0.05)
        settle(self.processes(), deadline)

    def _check_alive(self) -> None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise ServerError(
                f"{self.name} exited at start-up (code {self._proc.returncode}); "
                f"the end of its log:\n{self.logs(20)}"
            )

    def _healthz(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", self.health_path)
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()


class LabServer(HttpProcess):
    """The lab project under one server kind.

    >>> with LabServer(Profile(server="uvicorn"), env=lab_env) as srv:   # doctest: +SKIP
    ...     print(srv.url)
    http://127.0.0.1:41234
    """

    def __init__(self, profile: Profile, *, env: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        if not isinstance(profile, Profile):
            raise TypeError(f"LabServer needs a Profile, not {type(profile).__name__}.")
        super().__init__(**kwargs)
        self.profile = profile
        self.name = profile.server
        self._kind = SERVER_KINDS[profile.server]
        self.stop_signal = self._kind.stop_signal
        self._extra_env = dict(env or {})

    def _preflight(self) -> None:
        if importlib.util.find_spec(self._kind.module) is None:
            raise ServerError(
                f"{self.profile.server} needs the Python package '{self._kind.module}', which is "
                f"not installed in {sys.executable}: run `make lab` (or `pip install -r requirements.txt`)."
            )

    def _argv(self, port: int) -> list[str]:
        return self._kind.argv(self.profile, port, self.home / "run")

    def _env(self) -> dict[str, str]:
        return {"DJANGO_SETTINGS_MODULE": "lab.settings", **self.profile.env(), **self._extra_env}

    def _workers(self) -> int:
        return self._kind.worker_procs(self.profile)

    def command_line(self, bind: str = "0.0.0.0:8000") -> str:
        """The shell command that runs this configuration outside the lab."""
        host, _, port = bind.rpartition(":")
        argv = self._kind.argv(self.profile, int(port), Path("/dev/shm"))
        argv = [self._kind.program, *argv[2:]] if self._kind.program else ["python", *argv]
        text = " ".join(shlex.quote(a) for a in argv)
        return text.replace("127.0.0.1", host).replace("python -m ", "", 1)

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<LabServer {self.profile.describe()} {state}>"


class Upstream(HttpProcess):
    """The stand-in for an external API (``lab_project/upstream``): every ``/data``
    answer takes ``delay_ms`` (or ``?delay_ms=``), like a slow partner service."""

    name = "upstream"

    def __init__(self, delay_ms: int = 50, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay_ms = delay_ms

    def _argv(self, port: int) -> list[str]:
        return ["-m", "uvicorn", "upstream.app:app", "--host", "127.0.0.1", "--port", str(port),
                "--loop", "uvloop", "--http", "httptools", "--lifespan", "off",
                "--no-access-log", "--log-level", "warning"]

    def _env(self) -> dict[str, str]:
        return {"LAB_UPSTREAM_DELAY_MS": str(self.delay_ms)}


def start_each(servers: Sequence[HttpProcess], cpus: frozenset[int] | None, *,
               expected: type[BaseException] | tuple[type[BaseException], ...] = Exception
               ) -> dict[int, BaseException]:
    """Start ``servers`` at once on every CPU (each worker importing Django is CPU-bound,
    and nothing is measured while they start), then pin those that run to ``cpus``, where
    they are measured.  Returns the ``expected`` error of each one that could not start,
    by its index (it is stopped; the others keep running).  Anything else (an interrupt)
    stops them all and is raised."""
    from concurrent.futures import ThreadPoolExecutor

    def start(srv: HttpProcess) -> BaseException | None:
        try:
            srv.start()
        except expected as error:
            srv.stop()
            return error
        return None

    for srv in servers:
        srv.cpus = None
    try:
        with ThreadPoolExecutor(max(1, min(len(servers), 4))) as pool:
            errors = list(pool.map(start, servers))
        for srv, error in zip(servers, errors):
            if error is None:
                srv.pin(cpus)
    except BaseException:
        for srv in servers:
            srv.stop()
        raise
    return {i: error for i, error in enumerate(errors) if error is not None}


def start_together(servers: Sequence[HttpProcess], cpus: frozenset[int] | None) -> None:
    """``start_each``, all or nothing: when one cannot start, all are stopped and its
    error raised."""
    failed = start_each(servers, cpus)
    if failed:
        for srv in servers:
            srv.stop()
        raise next(iter(failed.values()))


def settle(processes: list[psutil.Process], deadline: float, busy: float = 0.25) -> None:
    """Wait (bounded by ``deadline``, a ``time.monotonic()`` value) until ``processes``
    together use less than ``busy`` of a core: a server's start-up work, or the queue a
    load left it with, is done."""
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

