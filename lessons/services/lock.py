"""One lab at a time owns a ``LAB_HOME``: a lock file says which process, and the lock
dies with that process, so a crashed run never blocks the next one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from lessons.services.base import ServiceError

__all__ = ["take_home_lock"]


def take_home_lock(home: Path) -> int:
    """Lock ``home`` for this process (its pid written in ``lab.lock``); the returned file
    descriptor holds the lock until it is closed.  Raise, naming the holder, when another
    process holds it."""
    fd = os.open(home / "lab.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise ServiceError(
            f"Another lab (pid {holder}) is using {home}: close it with lab.close() "
            f"(or stop that kernel), or give this one its own LAB_HOME."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
