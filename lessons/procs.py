"""Child processes that never outlive the lab.

Every server, database and load generator the lab starts goes through ``spawn``:

* it runs in its own session, so a Jupyter "interrupt" (SIGINT to the kernel's process
  group) reaches the notebook and not the servers, and ``stop`` can end the whole group
  (gunicorn's master and its workers) at once;
* it is registered with a small *reaper* process.  The reaper holds the read end of a
  pipe whose write end only this process holds; when this process ends in any way
  (``lab.close()``, a crash, a killed kernel), the pipe closes, the reaper reads EOF and
  stops every process still registered, by pid, checking the pid's start time so that a
  reused pid is never touched.  No process of ours is left behind, and no process that is
  not ours is ever signalled.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from lessons import cpus as _cpus

__all__ = ["spawn", "stop", "alive"]


class _Reaper:
    """Client side of the reaper: tells it which pids to stop if we die."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "lessons.procs"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
        return self._proc

    def _send(self, line: str) -> None:
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()

    def watch(self, pid: int, sig: int) -> None:
        self._send(f"watch {pid} {psutil.Process(pid).create_time()!r} {int(sig)}")

    def forget(self, pid: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._send(f"forget {pid}")

    def close(self) -> None:
        """At a clean exit, with nothing left to watch: let the reaper end too."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                try:
                    self._proc.wait(2)
                except subprocess.TimeoutExpired:
                    pass


_reaper = _Reaper()
_live: dict[int, tuple[subprocess.Popen[bytes], int]] = {}


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    cpus: frozenset[int] | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, watched by the reaper.

    ``log`` receives stdout and stderr (appended); ``cpus`` pins the process (its
    future children and threads inherit the set); ``user`` runs it as that user (only
    possible as root); ``stop_signal`` is what ``stop`` and the reaper send first.
    """
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]
    # Pinned right after exec, long before a server forks its workers or threads.
    _cpus.pin(cpus, proc.pid)
    _live[proc.pid] = (proc, stop_signal)
    _reaper.watch(proc.pid, stop_signal)
    return proc


def alive(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 5.0, sig: int | None = None) -> int | None:
    """Stop ``proc`` and its process group; SIGKILL whatever is left after ``timeout``.

    Returns the exit code.  Safe to call twice.
    """
    entry = _live.pop(proc.pid, None)
    first = sig if sig is not None else (entry[1] if entry else signal.SIGTERM)
    members = _group_members(proc.pid)
    if proc.poll() is None:
        _signal_group(proc.pid, first)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # Whatever of the group survived (the master exited, workers did not; or the
    # master ignored the signal) is killed.
    leftovers = [p for p in members if _still(p)]
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGKILL)
    for p in leftovers:
        try:
            p.kill()
        except psutil.Error:
            pass
    _wait_gone(leftovers, timeout)
    code = proc.wait(timeout)
    _reaper.forget(proc.pid)
    return code


def stop_all() -> None:
    """Stop every process this module started and has not stopped yet."""
    for proc, _ in list(_live.values()):
        stop(proc)
    _reaper.close()


atexit.register(stop_all)


def _group_members(pgid: int) -> list[psutil.Process]:
    found = []
    try:
        leader = psutil.Process(pgid)
        found.append(leader)
        found.extend(leader.children(recursive=True))
    except psutil.Error:
        pass
    return found


def _wait_gone(members: list[psutil.Process], timeout: float) -> None:
    """Wait until none of ``members`` runs.  A killed worker whose master died first is a
    zombie until the init process reaps it, which can take a second or more: a zombie
    runs nothing, so it counts as gone (psutil.wait_procs would wait for the reaping)."""
    deadline = time.monotonic() + timeout
    while any(_still(p) for p in members) and time.monotonic() < deadline:
        time.sleep(0.005)


def _still(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_group(pid: int, sig: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_forever() -> None:
    """The reaper process: stop every watched pid once our parent's pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched: dict[int, tuple[float, int]] = {}
    for raw in sys.stdin.buffer:
        parts = raw.decode().split()
        if parts[:1] == ["watch"] and len(parts) == 4:
            watched[int(parts[1])] = (float(parts[2]), int(parts[3]))
        elif parts[:1] == ["forget"] and len(parts) == 2:
            watched.pop(int(parts[1]), None)
    mine = []
    for pid, (created, sig) in watched.items():
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - created) > 0.01:
                continue  # the pid was reused: not ours
        except psutil.Error:
            continue
        mine.append((p, _group_members(pid)))
        _signal_group(pid, sig)
    deadline = time.monotonic() + 5.0
    for p, members in mine:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except psutil.Error:
            pass
        for m in members:
            if _still(m):
                try:
                    m.kill()
                except psutil.Error:
                    pass


if __name__ == "__main__":
    _reap_forever()
