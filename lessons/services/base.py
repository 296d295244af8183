"""What every service module shares: the error a learner reads, the progress callback,
and waiting for a process to come up (with the end of its log when it does not)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["ServiceError", "Progress", "tail", "wait_for"]

Progress = Callable[[str], None]


class ServiceError(RuntimeError):
    """A service could not be started; the message says what to do."""


def wait_for(ready: Callable[[], bool], proc: subprocess.Popen[bytes] | None, name: str,
             log: Path, *, timeout: float) -> None:
    """Return once ``ready()``; raise with the end of ``log`` when ``proc`` exits first or
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"{name} exited at start-up (code {proc.returncode}); "
                               f"the end of {log}:\n{tail(log)}")
        if ready():
            return
        time.sleep(0.05)
    raise ServiceError(f"{name} did not come up within {timeout:.0f} s; the end of {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or "(no log)"."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
