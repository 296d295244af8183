"""The load process: ``python -m lessons.measure.child SPEC.json``, started by
``lessons.measure.launch``.  It runs one ``Generator`` until the spec's hard deadline
and writes its counters (``.json``), latencies (``.lat``) and send lags (``.lag``), in
seconds, beside the spec's ``out``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from lessons.measure.generator import Generator
from lessons.measure.spec import LoadSpec

__all__ = ["main"]


def _resolve(host: str, port: int) -> str:
    """The address to connect to, looked up once (not once per connection): the first
    of the host's addresses that accepts a connection, else the name itself."""
    import ipaddress
    import socket

    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return host
    for family, type_, proto, _, addr in infos:
        try:
            with socket.socket(family, type_, proto) as s:
                s.settimeout(1.0)
                s.connect(addr)
            return str(addr[0])
        except OSError:
            continue
    return host


def _result(gen: Generator) -> dict[str, Any]:
    busy = None
    if gen.stat_ws and gen.stat_we:
        busy = {}
        for cpu, (b1, t1) in gen.stat_we.items():
            b0, t0 = gen.stat_ws.get(cpu, (b1, t1))
            busy[cpu] = 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
    return {
        "cpu_busy_pct": busy,
        "ok": gen.ok, "non_2xx": gen.non_2xx, "connect_errors": gen.connect_errors,
        "resets": gen.resets,
        "timeouts": gen.timeouts, "dropped": gen.dropped, "late": gen.late,
        "scheduled": gen.scheduled, "peak_connections": gen.peak,
        "cpu_window_s": gen.cpu_we - gen.cpu_ws,
        "wall_window_s": gen.wall_we - gen.wall_ws,
    }


def _new_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    try:
        import uvloop

        return uvloop.new_event_loop(), "uvloop"
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"


def main(spec_path: str) -> int:
    spec = LoadSpec.from_json(Path(spec_path).read_text())
    spec = dataclasses.replace(spec, host=_resolve(spec.host, spec.port))
    loop, loop_name = _new_loop()
    asyncio.set_event_loop(loop)
    wall0 = time.perf_counter()
    gen = Generator(spec, loop)
    gen.start()
    # A last guard: whatever happens, the loop ends shortly after the hard deadline.
    limit = spec.warmup + spec.duration + spec.timeout + 1.0
    try:
        loop.run_until_complete(asyncio.wait_for(asyncio.shield(gen.done), limit))
    except asyncio.TimeoutError:
        gen._finish()
    out = _result(gen)
    try:
        affinity = sorted(os.sched_getaffinity(0))
        pinned = len(affinity) < (os.cpu_count() or 1)
    except AttributeError:
        affinity, pinned = None, False
    out.update(loop=loop_name, precise_timer=gen.timer is not None, affinity=affinity,
               pinned=pinned, cpu_total_s=time.process_time(),
               wall_total_s=time.perf_counter() - wall0)
    _write(spec.out, gen, out)
    # Close what is left without waiting for the server.
    for task in asyncio.all_tasks(loop):
        task.cancel()
    try:
        loop.run_until_complete(asyncio.sleep(0))
    except Exception:  # noqa: BLE001
        pass
    return 0


def _write(base: str, gen: Generator, out: dict[str, Any]) -> None:
    with open(base + ".lat", "wb") as f:
        gen.lat.tofile(f)
    with open(base + ".lag", "wb") as f:
        gen.lag.tofile(f)
    Path(base + ".json.tmp").write_text(json.dumps(out))
    os.replace(base + ".json.tmp", base + ".json")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lessons.measure.child SPEC.json  "
                 "(started by lessons.measure.launch.run)")
    sys.exit(main(sys.argv[1]))
