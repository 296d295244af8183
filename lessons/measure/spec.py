"""What one load run is asked to do (``LoadSpec``), checked before anything starts, and
the fixed limits that judge a run.

The spec is built in the notebook's process (``LoadSpec.parse``), written as JSON for
each load process (``to_json``) and read back there (``from_json``); the child imports
nothing else from the lab.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["LoadSpec", "LATE_MS", "LAG_LIMIT_MS", "SATURATED_PCT", "BUSY_PCT",
           "MAX_CONNECTIONS", "join_url", "by_speed"]

LATE_MS = 1.0           # a request sent more than this after its intended time is "late"
LAG_LIMIT_MS = 2.0      # send-lag p99 above this (a fifth of a 10 ms SLO) flags the run
SATURATED_PCT = 85.0    # client CPU above this (percent of one core): the client is the limit
BUSY_PCT = 25.0         # others' use of the client's CPU above this: the machine was busy
MAX_CONNECTIONS = 256   # default bound of the open-loop connection pool


@dataclass(frozen=True)
class LoadSpec:
    """One run (or, with ``out`` and ``seed``, one load process's share of it)."""

    host: str
    port: int
    requests: tuple[str, ...]   # the raw HTTP/1.1 requests, cycled
    mode: str                   # "closed" or "open"
    connections: int
    rate: float | None          # open loop: requests/s; closed loop: None
    duration: float
    warmup: float
    timeout: float
    max_connections: int
    arrival: str                # "uniform" or "poisson"
    out: str = ""               # a load process: where it writes its result
    seed: int = 0               # a load process: its Poisson arrivals' seed

    @property
    def open(self) -> bool:
        return self.mode == "open"

    @property
    def paths(self) -> list[str]:
        return [r.split(" ", 2)[1] for r in self.requests]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        d = json.loads(text)
        d["requests"] = tuple(d["requests"])
        return cls(**d)

    @classmethod
    def parse(cls, url: str, *, connections: int, rate: float | None, duration: float,
              warmup: float, timeout: float, paths: Sequence[str] | None,
              headers: Mapping[str, str] | None, processes: int, max_connections: int,
              arrival: str) -> LoadSpec:
        """The spec for ``url``; ValueError (saying what is wrong) for a bad argument."""
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// URLs can be loaded, not {url!r}")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        _check_numbers(connections, rate, duration, warmup, timeout, processes, arrival,
                       max_connections)
        base_path = parts.path or "/"
        if parts.query:
            base_path += "?" + parts.query
        plist = list(paths) if paths else [base_path]
        for p in plist:
            if not p.startswith("/"):
                raise ValueError(f"paths must start with '/': {p!r}")
        return cls(
            host=parts.hostname, port=parts.port or 80,
            requests=_requests(plist, parts.netloc.rsplit("@", 1)[-1], headers),
            mode="closed" if rate is None else "open",
            connections=int(connections), rate=None if rate is None else float(rate),
            duration=float(duration), warmup=float(warmup), timeout=float(timeout),
            max_connections=int(max_connections), arrival=arrival,
        )


def _check_numbers(connections: int, rate: float | None, duration: float, warmup: float,
                   timeout: float, processes: int, arrival: str, max_connections: int) -> None:
    if connections < 1:
        raise ValueError("connections must be >= 1")
    if rate is not None and not rate > 0:
        raise ValueError("rate must be > 0 (or None for a closed loop)")
    if not duration > 0 or warmup < 0 or not timeout > 0:
        raise ValueError("duration and timeout must be > 0 and warmup >= 0")
    if processes < 1:
        raise ValueError("processes must be >= 1")
    if rate is None and connections < processes:
        raise ValueError("a closed loop needs at least one connection per process")
    if arrival not in ("uniform", "poisson"):
        raise ValueError("arrival is 'uniform' or 'poisson'")
    if max_connections < 1:
        raise ValueError("max_connections must be >= 1")


def _requests(plist: list[str], host_header: str, headers: Mapping[str, str] | None
              ) -> tuple[str, ...]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    if "host" not in {k.lower() for k in (headers or {})}:
        extra = f"Host: {host_header}\r\n" + extra
    reqs = [f"GET {p} HTTP/1.1\r\n{extra}User-Agent: lessons-load\r\n\r\n" for p in plist]
    if not all(r.isascii() for r in reqs) or any(c in p for p in plist for c in " \r\n"):
        raise ValueError("paths and headers must be ASCII, paths without spaces "
                         "(percent-encode the rest)")
    return tuple(reqs)


def join_url(base: str, path: str) -> str:
    """``base`` with ``path`` appended (one slash between them)."""
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")


def by_speed(value: float | None, normal: float, quick: float) -> float:
    """``value``, or when it is None the default for this speed (``config.quick()``)."""
    from lessons import config

    return value if value is not None else config.by_speed(normal, quick)
