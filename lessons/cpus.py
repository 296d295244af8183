"""Which CPUs the server and the load generator run on.

On a 2-core laptop the server and the client share the machine; pinning them to
different cores keeps one from stealing the other's time slices, so a p99 measures the
server and not the scheduler.  Where the OS cannot pin (macOS), we say so once and the
runs simply share the cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuPlan:
    """The CPU sets for the server and the load generator (None: not pinned)."""

    server: frozenset[int] | None
    client: frozenset[int] | None
    note: str

    @property
    def pinned(self) -> bool:
        return self.server is not None and self.client is not None


def can_pin() -> bool:
    """True when this OS lets a process choose its CPUs (Linux, not macOS)."""
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def available() -> list[int]:
    """The CPUs this process may run on, in order."""
    if can_pin():
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def plan(server_cpus: int = 1) -> CpuPlan:
    """Give the server its own core(s) and the load generator the next one.

    The server takes the first ``server_cpus`` allowed CPUs and the client the next one;
    further CPUs stay free for PostgreSQL, Valkey and the notebook itself.
    """
    cpus = available()
    if not can_pin():
        return CpuPlan(None, None, "CPU pinning is not available on this OS: server and "
                       "load generator share the cores, so repeat runs and trust ratios.")
    if len(cpus) <= server_cpus:
        return CpuPlan(None, None, f"Only {len(cpus)} CPU(s) available: server and load "
                       "generator share them, so repeat runs and trust ratios.")
    server = frozenset(cpus[:server_cpus])
    client = frozenset(cpus[server_cpus:server_cpus + 1])
    return CpuPlan(server, client, f"server pinned to CPU {_fmt(server)}, "
                   f"load generator to CPU {_fmt(client)}")


def pin(cpus: frozenset[int] | set[int] | None, pid: int = 0) -> bool:
    """Pin ``pid`` (0: this process) to ``cpus``; False when it could not be done."""
    if not cpus or not can_pin():
        return False
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError:
        return False
    return True


def _fmt(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
