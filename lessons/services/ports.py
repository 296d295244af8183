"""Loopback ports: a free one, whether one is taken, the port a service had last time
(remembered in LAB_HOME), and starting a service on it with a retry when another process
takes it in between."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from lessons import procs
from lessons.services.base import ServiceError, wait_for

__all__ = ["free_port", "port_in_use", "remembered_port", "new_port", "start_on_a_port"]


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:``port``.  SO_REUSEADDR, as servers set
    it, so connections of a stopped server lingering in TIME_WAIT do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def remembered_port(home: Path, service: str) -> int:
    """The port ``service`` had last time when it is free (so a kernel that keeps a
    connection setting across ``Lab()`` re-runs stays valid), else a free one."""
    path = home / f"{service}.port"
    try:
        port = int(path.read_text())
        if not port_in_use(port):
            return port
    except (OSError, ValueError):
        pass
    return new_port(home, service)


def new_port(home: Path, service: str) -> int:
    """A free port for ``service``, remembered in ``home`` for the next start."""
    port = free_port()
    (home / f"{service}.port").write_text(str(port))
    return port


def start_on_a_port(home: Path, service: str, name: str, log: Path, *,
                    spawn: Callable[[int], subprocess.Popen[bytes]],
                    ready: Callable[[int], bool],
                    timeout: float) -> tuple[subprocess.Popen[bytes], int]:
    """``spawn(port)`` on the remembered port and wait until ``ready(port)``.  When it
    fails and the port turns out taken (another lab starting at the same moment took it
    between our check and the service's bind), retry on a new port, three tries in all."""
    for attempt in range(3):
        port = remembered_port(home, service) if attempt == 0 else new_port(home, service)
        proc = spawn(port)
        try:
            wait_for(lambda: ready(port), proc, name, log, timeout=timeout)
            return proc, port
        except BaseException as exc:  # an interrupt too: nothing is left running
            procs.stop(proc)
            if not isinstance(exc, ServiceError) or attempt == 2 or not port_in_use(port):
                raise
    raise AssertionError("unreachable")
