"""Single requests that show one server behaviour each: what a timeout does to a slow
request, whether an idle keep-alive connection is closed.  (Load is ``lessons.measure``;
these are the one-request experiments of notebook 02.)"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Reply", "get", "post", "request", "together", "peak_rss", "idle_lifetime", "server_timing", "server_timings"]


@dataclass(frozen=True)
class Reply:
    status: int | None  # None: no HTTP answer at all
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None  # what the client saw instead of an answer
    first_byte_s: float | None = None  # time to the first byte of the body

    def json(self) -> Any:
        """The body parsed as JSON (raises with the status when there was none)."""
        if self.status is None:
            raise RuntimeError(f"no answer: {self.error}")
        return json.loads(self.body)


def _connect(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)


def get(url: str, path: str, *, timeout: float = 30.0) -> Reply:
    """One GET on a fresh connection; an exception becomes ``error``, never raised."""
    return request("GET", url, path, timeout=timeout)


def post(url: str, path: str, body: bytes = b"{}", *, timeout: float = 30.0) -> Reply:
    """One POST (JSON body, no cookies, no CSRF token: what a cross-site form or a script
    sends) on a fresh connection."""
    return request("POST", url, path, body, {"Content-Type": "application/json"}, timeout=timeout)


def request(method: str, url: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, *, timeout: float = 30.0) -> Reply:
    """One request on a fresh connection; an exception becomes ``error``, never raised."""
    conn = _connect(url, timeout)
    t0 = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        first = resp.read(1)
        first_byte_s = time.monotonic() - t0
        body = first + resp.read()
        return Reply(resp.status, time.monotonic() - t0, dict(resp.getheaders()), body,
                     first_byte_s=first_byte_s)
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


def server_timings(url: str, path: str, n: int = 200) -> list[dict[str, float]]:
    """``n`` requests one after another on one keep-alive connection: for each, every
    ``Server-Timing`` metric the server reported (ms, by name) and ``client``, the
    latency the client measured.  What the client sees beyond the server's outermost
    timer is the server's HTTP layer, the network stack and the client itself."""
    conn = _connect(url, 10)
    found = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            metrics = {"client": (time.perf_counter() - t0) * 1000}
            for metric in resp.getheader("Server-Timing", "").split(","):
                name, _, rest = metric.strip().partition(";")
                dur = [p.split("=", 1)[1] for p in rest.split(";") if p.strip().startswith("dur=")]
                if name and dur:
                    metrics[name] = float(dur[0])
            if len(metrics) == 1:
                raise RuntimeError(f"{path} sent no Server-Timing header: add ServerTimingMiddleware.")
            found.append(metrics)
    finally:
        conn.close()
    return found


def server_timing(url: str, path: str, n: int = 200) -> list[tuple[float, float]]:
    """(client ms, the server's ``app`` ms) for ``n`` sequential requests."""
    return [(m["client"], m["app"]) for m in server_timings(url, path, n)]


def together(url: str, paths: list[str], *, timeout: float = 30.0,
             delays: Sequence[float] | None = None) -> list[Reply]:
    """One GET per path, all released at the same instant from their own threads (a
    barrier), on fresh connections: a burst of simultaneous users, such as the cold
    misses of a cache stampede.  ``delays`` (seconds, one per path) holds some back
    after the release, so that a request is sure to arrive *during* the burst."""
    if delays is not None and len(delays) != len(paths):
        raise ValueError(f"delays has {len(delays)} values for {len(paths)} paths: give one per path.")
    barrier = threading.Barrier(len(paths))

    def one(path: str, delay: float) -> Reply:
        barrier.wait(timeout)
        if delay > 0:
            time.sleep(delay)
        return get(url, path, timeout=timeout)

    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(one, paths, delays or [0.0] * len(paths)))


def peak_rss(processes: list[Any], action: Callable[[], Any], *, every: float = 0.005) -> tuple[Any, int]:
    """Run ``action`` while sampling the resident memory of ``processes`` (a server's
    master and workers); return its result and the peak growth in bytes over the
    memory before it started (sampled, so a very short spike can be missed)."""
    import psutil

    def total() -> int:
        size = 0
        for p in processes:
            try:
                size += p.memory_info().rss
            except psutil.Error:
                pass
        return size

    base = peak = total()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, total())
            done.wait(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    return result, max(0, peak - base)
