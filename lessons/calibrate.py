"""How fast is the measuring instrument itself?

``python -m lessons calibrate`` starts a trivial server (raw asyncio + uvloop, a fixed
small 200 response, no parsing beyond finding the end of each request) pinned to the
server CPU, and measures the load generator against it:

* its ceiling: closed loop, requests/s on its one core (the goal: >= 15,000 req/s, and
  >= 0.5 x wrk's, aiming at 0.8 x, when ``wrk`` is installed);
* its overhead at p50: the p50 latency at a low open-loop rate (the client's own time,
  plus the trivial server's and the loopback's) minus the *floor*: the p50 of a bare
  blocking socket paced the same way (busy-waiting for each intended time, so it pays
  no timer), against the same server from the same core.  The goal: < 0.2 ms.

These are benchmarks of this machine, not tests: they print pass/miss and never fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrivialServer", "Calibration", "calibrate", "GOAL_RPS", "GOAL_WRK_RATIO",
           "GOAL_P50_MS"]

GOAL_RPS = 15_000.0
GOAL_WRK_RATIO = 0.5
AIM_WRK_RATIO = 0.8
GOAL_P50_MS = 0.2

_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
             b"Connection: keep-alive\r\n\r\nok")


# --------------------------------------------------------------------------------------
# The trivial server (its own process)
# --------------------------------------------------------------------------------------

class _Trivial(asyncio.Protocol):
    __slots__ = ("transport", "buf")

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        n = buf.count(b"\r\n\r\n")
        if n:
            self.transport.write(_RESPONSE * n)
            buf = buf[buf.rfind(b"\r\n\r\n") + 4:]
        self.buf = buf


def serve(port_file: str, host: str = "127.0.0.1") -> None:
    """Run the trivial server on a free port; write the port to ``port_file``."""
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(_Trivial, host, 0, backlog=4096, reuse_address=True))
    port = server.sockets[0].getsockname()[1]
    tmp = port_file + ".tmp"
    Path(tmp).write_text(str(port))
    os.replace(tmp, port_file)
    loop.run_forever()


def floor(port: int, rate: float, seconds: float, out: str) -> None:
    """The floor: a blocking socket, paced by busy-waiting, timed from the intended send
    time like the open loop.  Writes its latencies' quantiles (ms) to ``out`` as JSON."""
    import json
    import socket

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    clock = time.perf_counter
    lat = []
    gap = 1.0 / rate
    n = max(1, int(rate * seconds))
    nxt = clock() + 0.1
    for i in range(n + 20):
        while clock() < nxt:
            pass
        sock.sendall(req)
        got = 0
        while got < len(_RESPONSE):
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("the trivial server closed the connection")
            got += len(chunk)
        if i >= 20:                      # the first few warm the path up
            lat.append((clock() - nxt) * 1e3)
        nxt += gap
    sock.close()
    lat.sort()
    q = {f"p{int(p * 100)}": lat[min(len(lat) - 1, int(p * len(lat)))] for p in (0.5, 0.9, 0.99)}
    Path(out).write_text(json.dumps(q))


class TrivialServer:
    """The trivial server in its own (reaper-watched, pinned) process.

    ``with TrivialServer() as srv: srv.url``.
    """

    def __init__(self, cpus: frozenset[int] | None = None) -> None:
        from lessons import config, procs

        self._dir = tempfile.mkdtemp(prefix="lab-trivial-")
        port_file = os.path.join(self._dir, "port")
        self.proc = procs.spawn(
            [sys.executable, "-m", "lessons.calibrate", "--serve", port_file],
            cwd=config.REPO, log=os.path.join(self._dir, "log"), cpus=cpus)
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if not procs.alive(self.proc) or time.monotonic() > deadline:
                log = Path(self._dir, "log").read_text(errors="replace")[-1500:]
                self.stop()
                raise RuntimeError(f"the trivial server did not start:\n{log}")
            time.sleep(0.02)
        self.port = int(Path(port_file).read_text())
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        from lessons import procs

        procs.stop(self.proc)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> TrivialServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------
# The calibration
# --------------------------------------------------------------------------------------

@dataclass
class Calibration:
    ceiling_rps: float                 # best closed-loop req/s of one load process
    ceiling_connections: int
    ceiling_client_cpu_pct: float
    p50_ms: float                      # p50 at a low open-loop rate (client+server+loopback)
    p99_ms: float
    low_rate: float
    floor_p50_ms: float | None         # a bare blocking socket paced the same way
    overhead_p50_ms: float             # p50_ms - floor_p50_ms (p50_ms without a floor)
    closed1_p50_ms: float              # p50 of one closed-loop connection (round trip)
    wrk_rps: float | None = None
    ratio_vs_wrk: float | None = None
    pinning: str = ""
    loop: str = ""
    precise_timer: bool = False
    probes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def goals(self) -> list[tuple[str, bool | None, str]]:
        """(goal, passed or None when not measured, measured)."""
        out: list[tuple[str, bool | None, str]] = [
            (f"ceiling >= {GOAL_RPS:,.0f} req/s on one core", self.ceiling_rps >= GOAL_RPS,
             f"{self.ceiling_rps:,.0f} req/s"),
        ]
        if self.ratio_vs_wrk is None:
            out.append((f"ceiling >= {GOAL_WRK_RATIO:g} x wrk (aim {AIM_WRK_RATIO:g})", None,
                        "wrk is not installed"))
        else:
            out.append((f"ceiling >= {GOAL_WRK_RATIO:g} x wrk (aim {AIM_WRK_RATIO:g})",
                        self.ratio_vs_wrk >= GOAL_WRK_RATIO,
                        f"{self.ratio_vs_wrk:.2f} x wrk ({self.wrk_rps:,.0f} req/s)"))
        out.append((f"client p50 overhead < {GOAL_P50_MS:g} ms",
                    self.overhead_p50_ms < GOAL_P50_MS,
                    f"{self.overhead_p50_ms:.3f} ms (p50 {self.p50_ms:.3f} ms at "
                    f"{self.low_rate:,.0f} req/s open loop"
                    + (f" - floor {self.floor_p50_ms:.3f} ms)" if self.floor_p50_ms is not None
                       else ", no floor measured)")))
        return out

    def to_json_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["goals"] = [{"goal": g, "passed": ok, "measured": m} for g, ok, m in self.goals()]
        return d

    def report(self) -> str:
        lines = [
            f"Load generator calibration ({self.pinning}; loop {self.loop}, "
            f"{'timerfd' if self.precise_timer else 'loop timers'} for the open-loop schedule)",
        ]
        for p in self.probes:
            lines.append(f"  closed loop {p['connections']:>3} conn: {p['rps']:>9,.0f} req/s, "
                         f"p50 {p['p50_ms']:.3f} ms, client CPU {p['client_cpu_pct']:.0f}%")
        if self.ceiling_client_cpu_pct > 0:
            lines.append(f"  ceiling {self.ceiling_rps:,.0f} req/s at "
                         f"{self.ceiling_client_cpu_pct:.0f}% of the client's core: about "
                         f"{self.ceiling_rps * 100 / self.ceiling_client_cpu_pct:,.0f} req/s "
                         "per full core")
        lines.append(f"  one connection round trip: p50 {self.closed1_p50_ms:.3f} ms")
        lines.append(f"  open loop {self.low_rate:,.0f} req/s: p50 {self.p50_ms:.3f} ms, "
                     f"p99 {self.p99_ms:.3f} ms")
        if self.floor_p50_ms is not None:
            lines.append(f"  floor (bare blocking socket, same pacing): p50 "
                         f"{self.floor_p50_ms:.3f} ms")
        if self.wrk_rps is not None:
            lines.append(f"  wrk (1 thread, {self.ceiling_connections} conn, same core, best "
                         f"of 2 interleaved with ours): {self.wrk_rps:,.0f} req/s")
        lines.append("Goals:")
        for goal, ok, measured in self.goals():
            mark = "n/a " if ok is None else ("pass" if ok else "MISS")
            lines.append(f"  [{mark}] {goal}: {measured}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def calibrate(*, duration: float = 3.0, warmup: float = 1.0, low_rate: float = 200.0,
              connections: tuple[int, ...] = (16, 64), progress: bool = False) -> Calibration:
    """Measure the load generator against the trivial server on this machine."""
    from lessons import cpus
    from lessons.measure import launch as load

    plan = cpus.plan()
    warnings: list[str] = []
    if not plan.pinned:
        warnings.append(plan.note)
    with TrivialServer(plan.server) as srv:
        probes = []
        best: Any = None
        for c in connections:
            r = load.run(srv.url, connections=c, duration=duration, warmup=warmup,
                         label=f"calibrate closed {c}", progress=progress, save=False)
            probes.append({"connections": c, "rps": r.rps, "p50_ms": r.p50_ms,
                           "client_cpu_pct": r.client_cpu_pct})
            if best is None or r.rps > best.rps:
                best = r
            warnings += [w for w in r.warnings if "load generator used" not in w
                         and w not in warnings]
        one = load.run(srv.url, connections=1, duration=duration, warmup=warmup,
                       label="calibrate closed 1", progress=progress, save=False)
        low = load.run(srv.url, rate=low_rate, connections=2, duration=duration,
                       warmup=warmup, label=f"calibrate open {low_rate:g}",
                       progress=progress, save=False)
        warnings += [w for w in low.warnings if w not in warnings]
        if best.client_cpu_pct < 80:
            warnings.append(f"The client used only {best.client_cpu_pct:.0f}% of its core "
                            "at its best: the trivial server, not the client, may have "
                            "been the limit.")
        floor_p50 = _floor(srv.port, low_rate, duration, plan.client)
        wrk_rps = _wrk(srv.url, best.connections, duration, plan.client)
        if wrk_rps is not None:
            # The machine drifts: interleave (wrk, ours, wrk) and compare best with best.
            again = load.run(srv.url, connections=best.connections, duration=duration,
                             warmup=warmup, label=f"calibrate closed {best.connections}",
                             progress=progress, save=False)
            if again.rps > best.rps:
                best = again
            wrk_rps = max(wrk_rps, _wrk(srv.url, best.connections, duration, plan.client)
                          or 0.0)
    return Calibration(
        ceiling_rps=best.rps, ceiling_connections=best.connections,
        ceiling_client_cpu_pct=best.client_cpu_pct, p50_ms=low.p50_ms, p99_ms=low.p99_ms,
        low_rate=low_rate, floor_p50_ms=floor_p50,
        overhead_p50_ms=max(0.0, low.p50_ms - (floor_p50 or 0.0)), closed1_p50_ms=one.p50_ms, wrk_rps=wrk_rps,
        ratio_vs_wrk=(best.rps / wrk_rps) if wrk_rps else None, pinning=plan.note,
        loop=str(low.meta.get("loop")), precise_timer=bool(low.meta.get("precise_timer")),
        probes=probes, warnings=warnings,
    )


def _floor(port: int, rate: float, seconds: float, client: frozenset[int] | None
           ) -> float | None:
    """The floor's p50 (ms), measured in its own process on the client CPU."""
    import json

    from lessons import config, procs

    with tempfile.TemporaryDirectory(prefix="lab-floor-") as tmp:
        out = os.path.join(tmp, "floor.json")
        p = procs.spawn([sys.executable, "-m", "lessons.calibrate", "--floor", str(port),
                         str(rate), str(seconds), out], cwd=config.REPO,
                        log=os.path.join(tmp, "log"), cpus=client)
        try:
            p.wait(seconds + 15)
        except subprocess.TimeoutExpired:
            pass
        procs.stop(p)
        try:
            return float(json.loads(Path(out).read_text())["p50"])
        except (OSError, ValueError, KeyError):
            return None


def _wrk(url: str, connections: int, duration: float, client: frozenset[int] | None
         ) -> float | None:
    """wrk's requests/s against the same server, pinned like our client (None: no wrk)."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    from lessons import procs

    with tempfile.TemporaryDirectory(prefix="lab-wrk-") as tmp:
        log = os.path.join(tmp, "wrk.log")
        secs = max(1, round(duration))
        p = procs.spawn([exe, "-t1", f"-c{connections}", f"-d{secs}s", url], log=log,
                        cpus=client)
        try:
            p.wait(secs + 15)
        except subprocess.TimeoutExpired:
            pass
        procs.stop(p)
        text = Path(log).read_text(errors="replace")
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    return float(m.group(1)) if m else None


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "--floor":
        floor(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    else:
        sys.exit("usage: python -m lessons.calibrate --serve PORT_FILE  "
                 "(or: python -m lessons calibrate)")
