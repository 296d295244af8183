"""Single requests that show one server behaviour each: what a timeout does to a slow
request, whether an idle keep-alive connection is closed.  (Load is ``lessons.load``;
these are the one-request experiments of notebook 02.)"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["Reply", "get", "idle_lifetime"]


@dataclass(frozen=True)
class Reply:
    status: int | None  # None: no HTTP answer at all
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None  # what the client saw instead of an answer


def _connect(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)


def get(url: str, path: str, *, timeout: float = 30.0) -> Reply:
    """One GET on a fresh connection; an exception becomes ``error``, never raised."""
    conn = _connect(url, timeout)
    t0 = time.monotonic()
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return Reply(resp.status, time.monotonic() - t0, dict(resp.getheaders()), body)
    except (OSError, http.client.HTTPException) as exc:
        return Reply(None, time.monotonic() - t0, error=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def idle_lifetime(url: str, path: str, *, limit: float = 10.0) -> float | None:
    """Send one request, then stay idle: how many seconds until the server closes the
    keep-alive connection (0 when it closes it right after the answer; None when it is
    still open after ``limit`` seconds)."""
    conn = _connect(url, 10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        t0 = time.monotonic()
        if resp.will_close:
            return 0.0
        assert conn.sock is not None
        conn.sock.settimeout(limit)
        try:
            conn.sock.recv(1)  # returns b"" when the server closes the connection
        except TimeoutError:
            return None
        except ConnectionResetError:
            pass
        return time.monotonic() - t0
    finally:
        conn.close()
