"""Where a request's time goes, stage by stage, under a fixed open-loop rate.

``measure(url, path, rate=..., samples=...)`` sends requests at fixed intervals from a
process of its own (pinned to the load generator's CPU), each on a new connection, and
keeps, for every request, the client's clock readings (intended send, actual send, last
byte) and the server's ``Server-Timing``, ``Lab-Clock`` and ``Lab-Queries`` headers
(``lab_project/api/l11.py``: ``budget_items``, ``StageClock``).  ``time.perf_counter()``
is ``CLOCK_MONOTONIC`` on Linux, one clock for every process of the machine, so the
client can place the server's readings between its own.  Every stage is then an
interval between two readings, and the stages follow each other: their sum is each
request's latency, with no stage computed as "the rest":

  client lag     intended send -> actual send (the load generator's own delay)
  request in     actual send -> the server's first middleware (connecting, the server
                 accepting and parsing, Django's request set-up and request_started)
  middleware     the middleware stack, in and out
  routing        URL resolution, the view call and return
  auth check     the token checked, its customer looked up
  ORM query      the query built, run, turned into rows
  serialization  rows to bytes
  response       the HttpResponse built; the server writing it; the client reading it
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["measure", "ameasure", "STAGES", "summary"]

STAGES = ("client lag", "request in", "middleware", "routing", "auth check", "ORM query",
          "serialization", "response")


def measure(url: str, path: str, *, rate: float, samples: int, warmup: float = 0.5,
            headers: Mapping[str, str] | None = None, timeout: float = 2.0) -> pd.DataFrame:
    """One row per measured request: each stage in ms, ``total`` (intended send to last
    byte), the database waits inside auth and ORM (``auth db``, ``ORM db``), the queries
    each ran, and the status.  Requests that got no answer count as ``status`` 0."""
    import pandas as pd

    from lessons import config, cpus, procs

    parts = urlsplit(url)
    head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    spec = {"host": parts.hostname, "port": parts.port,
            "request": f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}Connection: close\r\n\r\n",
            "rate": float(rate), "count": int(samples), "warmup": int(round(warmup * rate)),
            "timeout": float(timeout)}
    tmp = Path(tempfile.mkdtemp(prefix="lab-stages-"))
    try:
        (tmp / "spec.json").write_text(json.dumps(spec))
        proc = procs.spawn([sys.executable, "-m", "lessons.stages", str(tmp / "spec.json")],
                           cwd=config.REPO, log=tmp / "log", cpus=cpus.plan().client)
        try:
            proc.wait(warmup + samples / rate + timeout + 10)
        finally:
            procs.stop(proc, timeout=2.0)
        out = tmp / "out.json"
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError("the stage client failed:\n" + (tmp / "log").read_text()[-2000:])
        rows = json.loads(out.read_text())
    finally:
        for f in tmp.iterdir():
            f.unlink(missing_ok=True)
        tmp.rmdir()
    return pd.DataFrame([_stages(r) for r in rows])


async def ameasure(url: str, path: str, **kwargs: Any) -> pd.DataFrame:
    """``measure`` for ``await`` (runs in a thread)."""
    import functools

    return await asyncio.to_thread(functools.partial(measure, url, path, **kwargs))


def _timings(header: str) -> dict[str, float]:
    found = {}
    for metric in header.split(","):
        name, _, rest = metric.strip().partition(";")
        for p in rest.split(";"):
            if p.strip().startswith("dur="):
                found[name] = float(p.split("=", 1)[1])
    return found


def _stages(r: dict[str, Any]) -> dict[str, Any]:
    ms = 1000.0
    row: dict[str, Any] = {"status": r["status"], "total": (r["done"] - r["intended"]) * ms}
    if not r["status"] or "clock" not in r:
        return row
    t = _timings(r.get("timing", ""))
    server_in, server_out = (float(v) for v in r["clock"].split())
    queries = dict(kv.strip().split("=") for kv in r.get("queries", "").split(",") if "=" in kv)
    row.update({
        "client lag": (r["sent"] - r["intended"]) * ms,
        "request in": (server_in - r["sent"]) * ms,
        "middleware": t.get("middleware", math.nan),
        "routing": t.get("routing", math.nan),
        "auth check": t.get("auth", math.nan),
        "ORM query": t.get("orm", math.nan),
        "serialization": t.get("serialize", math.nan),
        "response": t.get("respond", math.nan) + (r["done"] - server_out) * ms,
        "auth db": t.get("auth-db", math.nan),
        "ORM db": t.get("orm-db", math.nan),
        "auth queries": int(queries.get("auth", -1)),
        "ORM queries": int(queries.get("orm", -1)),
    })
    return row


def summary(df: pd.DataFrame, guide: Mapping[str, float]) -> pd.DataFrame:
    """Per stage: the guide's line, p50, p99 with its bounds (``lessons.measure.bounds``); then the
    whole request's, and the database waits inside auth and ORM (parts of those stages,
    not stages of their own).  The stages come from the 2xx requests of ``measure``; the
    whole request from every request sent, one without a 2xx answer counted as slower
    than any SLO."""
    import pandas as pd

    from lessons.measure.bounds import quantile_bounds

    import numpy as np

    good = (df.status >= 200) & (df.status < 300)
    ok = df[good]
    rows = {}
    names = {"total": "whole request", "auth db": "(auth check: its database wait)",
             "ORM db": "(ORM query: its database wait)"}
    for stage in (*STAGES, "total", "auth db", "ORM db"):
        # The whole request counts every request sent: one that got no 2xx answer is
        # slower than any SLO (infinite), not left out.
        values = np.where(good, df[stage], math.inf) if stage == "total" else ok[stage].to_numpy()
        low, p99, high = quantile_bounds(values, 0.99)
        rows[names.get(stage, stage)] = {
            "guide (ms)": guide.get(stage, 10.0 if stage == "total" else math.nan),
            "p50 (ms)": float(np.median(values)), "p99 (ms)": p99,
            "p99 low (ms)": low, "p99 high (ms)": high}
    return pd.DataFrame(rows).T


# -- the client process ------------------------------------------------------------------

def _client(spec_path: str) -> int:
    """The child process: send the spec's requests on schedule, write every measured
    request's readings to ``out.json`` beside the spec."""
    spec = json.loads(Path(spec_path).read_text())
    out = _Schedule(spec, _new_loop()).run()
    target = Path(spec_path).with_name("out.json")
    target.with_suffix(".tmp").write_text(json.dumps(out))
    os.replace(target.with_suffix(".tmp"), target)
    return 0


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


class _Schedule:
    """Requests at fixed intervals (the first ``warmup`` ones not kept), each on a new
    connection; done when every request has its answer or failed."""

    def __init__(self, spec: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self.spec = spec
        self.loop = loop
        self.clock = time.perf_counter
        self.request = spec["request"].encode("latin-1")
        self.interval = 1.0 / spec["rate"]
        self.total = spec["warmup"] + spec["count"]
        self.records: list[dict[str, Any]] = []
        self.pending = 0
        self.done = loop.create_future()
        self.start = 0.0

    def run(self) -> list[dict[str, Any]]:
        """Every measured request's readings; one without an answer in time has status 0."""
        self.start = self.clock() + 0.05
        self.loop.call_later(0.04, self.next)
        limit = 0.05 + self.total * self.interval + self.spec["timeout"] + 2
        try:
            self.loop.run_until_complete(asyncio.wait_for(self.done, limit))
        except asyncio.TimeoutError:
            pass
        for rec in self.records:
            rec.setdefault("done", self.clock())
            rec.setdefault("status", 0)
        return [r for r in self.records if not r.get("skip")]

    def next(self) -> None:
        # Wake a little early and spin to the intended time: the event loop's timers are
        # coarse (about 1 ms), which would all land in "client lag".
        i = len(self.records)
        if i >= self.total:
            return
        t = self.start + i * self.interval
        while self.clock() < t:
            pass
        self.loop.create_task(self.one(t, i >= self.spec["warmup"]))
        nxt = self.start + (i + 1) * self.interval
        self.loop.call_later(max(0.0, nxt - self.clock() - 0.0015), self.next)

    async def one(self, intended: float, measured: bool) -> None:
        rec: dict[str, Any] = {"intended": intended, "sent": self.clock()}
        self.records.append(rec if measured else {"skip": True})
        self.pending += 1
        try:
            await asyncio.wait_for(
                self.loop.create_connection(lambda: _Conn(self, rec), self.spec["host"],
                                            self.spec["port"]),
                self.spec["timeout"])
        except (OSError, asyncio.TimeoutError):
            rec["done"], rec["status"] = self.clock(), 0
            self.settled()

    def settled(self) -> None:
        """One request is over (answered or failed)."""
        self.pending -= 1
        if self.pending == 0 and len(self.records) == self.total and not self.done.done():
            self.done.set_result(None)


class _Conn(asyncio.Protocol):
    """One request: the server's timing headers, its status and the clock at its end."""

    HEADERS = {b"server-timing": "timing", b"lab-clock": "clock", b"lab-queries": "queries"}

    def __init__(self, schedule: _Schedule, rec: dict[str, Any]) -> None:
        import httptools

        self.schedule = schedule
        self.rec = rec
        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.finished = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.schedule.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:  # noqa: BLE001
            self.finish(0)

    def on_header(self, name: bytes, value: bytes) -> None:
        key = self.HEADERS.get(name.lower())
        if key:
            self.rec[key] = value.decode()

    def on_message_complete(self) -> None:
        self.finish(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.finish(0)

    def finish(self, status: int) -> None:
        if self.finished:
            return
        self.finished = True
        self.rec["done"] = self.schedule.clock()
        self.rec["status"] = status
        if self.transport is not None:
            self.transport.close()
        self.schedule.settled()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lessons.stages SPEC.json  (started by lessons.stages.measure)")
    sys.exit(_client(sys.argv[1]))
