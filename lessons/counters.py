"""Exact per-request counts from an instrumented server (``Profile(instrument=True)``).

Timing says a configuration is slow; counts say why.  ``per_request`` sends ``n``
requests one after another on one keep-alive connection, reads the server's counters
(``/__lab__/counters``, answered in front of Django so reading costs nothing) before and
after, and divides: thread hops, OS threads started and SQL queries per request.  With
one worker the results are exact integers.  ``Counts`` is the table ``Lab.counts`` returns.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pandas as pd

__all__ = ["read", "per_request", "Counts"]

NAMES = ("sync_to_async", "async_to_sync", "threads_started", "queries")


def _conn(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)


def read(url: str) -> dict[str, int]:
    """The server process's counters now (one worker: the only process)."""
    conn = _conn(url)
    try:
        conn.request("GET", "/__lab__/counters")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(
                f"{url} has no counters (HTTP {resp.status}): start it with Profile(instrument=True)."
            )
        return json.loads(body)
    finally:
        conn.close()


def per_request(url: str, path: str, n: int = 50) -> dict[str, float]:
    """Counts per request of ``path``, averaged over ``n`` sequential requests."""
    before = read(url)
    conn = _conn(url)
    try:
        for _ in range(n):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 400:
                raise RuntimeError(f"GET {path} answered {resp.status}; fix the request first.")
    finally:
        conn.close()
    after = read(url)
    if after["pid"] != before["pid"]:
        raise RuntimeError("The counters came from two processes: count with workers=1.")
    served = after["requests"] - before["requests"]
    return {name: _exact((after[name] - before[name]) / served) for name in NAMES} | {"requests": served}


def _exact(value: float) -> int | float:
    """Whole counts as ints (the usual case with one worker), fractions as they are."""
    return int(value) if value.is_integer() else value


class Counts(pd.DataFrame):
    """Exact counts per request, one row per configuration and path (columns ``config``,
    ``path`` and one per count); ``counts.of(config, path)`` reads one."""

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame  # a filtered or re-indexed table is a plain DataFrame

    def of(self, config: str, path: str | None = None, what: str = "sync_to_async") -> int | float:
        """The count ``what`` per request of ``config`` on ``path`` (``path`` may be left
        out when one path was counted)."""
        rows = self[self["config"] == config]
        if path is not None:
            rows = rows[rows["path"] == path]
        if len(rows) != 1:
            raise KeyError(f"{len(rows)} rows for config {config!r}, path {path!r}: "
                           f"the configs are {sorted(set(self['config']))}, the paths {sorted(set(self['path']))}")
        return _exact(float(rows[what].iloc[0]))
