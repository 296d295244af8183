"""A test server with injectable, deterministic misbehaviour.

Run as ``python tests/stub_server.py --port-file F [options]``; it binds 127.0.0.1 on a
free port and writes the port to F.  Requests are numbered 1, 2, 3... in arrival order
(all connections together); ``GET /__stats`` answers the counts as JSON (also per path,
and how many carried ``X-Lab: yes``) and is not numbered.  For request number k, the first rule that matches wins:

  --hang-first N     k <= N: never answer (a server stalled at the start of a run)
  --hang-every N     k % N == 0: never answer (the client must time out)
  --reset-every N    k % N == 0: reset the connection (RST), no response
  --status-every N   k % N == 0: answer --status (default 500)
  --slow-every N     k % N == 0: answer after --slow-ms instead of --delay-ms
  otherwise          answer 200 after --delay-ms (asyncio.sleep: requests overlap)

  --busy-ms X        spin the CPU X ms per request before answering (serialises them:
                     capacity <= 1000/X req/s)
  --stall-ms X --stall-every-s S   block the whole event loop X ms every S seconds
                     (nothing is read, accepted or answered meanwhile)

``StubServer(...)`` starts it through ``lessons.procs`` for the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

_REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


class _Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.ok = 0
        self.status = 0
        self.hung = 0
        self.reset = 0
        self.slow = 0
        self.connections = 0
        self.stalls = 0
        self.paths: dict[str, int] = {}
        self.with_header = 0   # requests that carried "X-Lab: yes"


class _Handler(asyncio.Protocol):
    def __init__(self, opts: argparse.Namespace, stats: _Stats) -> None:
        self.opts = opts
        self.stats = stats
        self.buf = b""
        self.transport: Any = None
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
            if path != b"/__stats":
                key = path.decode("latin-1")
                self.stats.paths[key] = self.stats.paths.get(key, 0) + 1
                if b"\r\nx-lab: yes" in head.lower():
                    self.stats.with_header += 1
            self.handle(path)

    def handle(self, path: bytes) -> None:
        o, s = self.opts, self.stats
        if path == b"/__stats":
            self.respond(200, json.dumps(vars(s)).encode(), 0.0)
            return
        s.requests += 1
        k = s.requests
        if o.busy_ms:
            end = time.perf_counter() + o.busy_ms / 1e3
            while time.perf_counter() < end:
                pass
        if k <= o.hang_first or (o.hang_every and k % o.hang_every == 0):
            s.hung += 1
            return
        if o.reset_every and k % o.reset_every == 0:
            s.reset += 1
            sock = self.transport.get_extra_info("socket")
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.transport.abort()
            return
        if o.status_every and k % o.status_every == 0:
            s.status += 1
            self.respond(o.status, b"error", o.delay_ms / 1e3)
            return
        if o.slow_every and k % o.slow_every == 0:
            s.slow += 1
            self.respond(200, b"slow", o.slow_ms / 1e3)
            return
        s.ok += 1
        self.respond(200, b"ok", o.delay_ms / 1e3)

    def respond(self, status: int, body: bytes, delay: float) -> None:
        data = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._write, data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)


def _stall(loop: asyncio.AbstractEventLoop, opts: argparse.Namespace, stats: _Stats) -> None:
    stats.stalls += 1
    time.sleep(opts.stall_ms / 1e3)
    loop.call_later(opts.stall_every_s, _stall, loop, opts, stats)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--slow-every", type=int, default=0)
    ap.add_argument("--slow-ms", type=float, default=50.0)
    ap.add_argument("--status-every", type=int, default=0)
    ap.add_argument("--status", type=int, default=500)
    ap.add_argument("--hang-first", type=int, default=0)
    ap.add_argument("--hang-every", type=int, default=0)
    ap.add_argument("--reset-every", type=int, default=0)
    ap.add_argument("--busy-ms", type=float, default=0.0)
    ap.add_argument("--stall-ms", type=float, default=0.0)
    ap.add_argument("--stall-every-s", type=float, default=1.0)
    opts = ap.parse_args(argv)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stats = _Stats()
    server = loop.run_until_complete(loop.create_server(
        lambda: _Handler(opts, stats), "127.0.0.1", 0, backlog=4096))
    port = server.sockets[0].getsockname()[1]
    Path(opts.port_file + ".tmp").write_text(str(port))
    os.replace(opts.port_file + ".tmp", opts.port_file)
    if opts.stall_ms:
        loop.call_later(opts.stall_every_s, _stall, loop, opts, stats)
    loop.run_forever()


class StubServer:
    """The stub in its own reaper-watched process: ``with StubServer(delay_ms=2) as s``.

    Keyword arguments are the command-line options (``slow_every=50`` ->
    ``--slow-every 50``).  ``cpus`` pins it (default: the plan's server CPU).
    """

    def __init__(self, cpus: frozenset[int] | None | str = "plan", **options: float) -> None:
        import tempfile

        from lessons import config, cpus as _cpus, procs

        if cpus == "plan":
            cpus = _cpus.plan().server
        self._dir = tempfile.mkdtemp(prefix="lab-stub-")
        port_file = os.path.join(self._dir, "port")
        argv = [sys.executable, str(Path(__file__).resolve()), "--port-file", port_file]
        for k, v in options.items():
            argv += [f"--{k.replace('_', '-')}", str(v)]
        self.proc = procs.spawn(argv, cwd=config.REPO, log=os.path.join(self._dir, "log"),
                                cpus=cpus)  # type: ignore[arg-type]
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if not procs.alive(self.proc) or time.monotonic() > deadline:
                log = Path(self._dir, "log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"stub server did not start:\n{log}")
            time.sleep(0.02)
        self.port = int(Path(port_file).read_text())
        self.url = f"http://127.0.0.1:{self.port}/"

    def stats(self) -> dict[str, int]:
        from lessons import probes

        return probes.get(self.url, "/__stats", timeout=5).json()

    def stop(self) -> None:
        import shutil

        from lessons import procs

        procs.stop(self.proc)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> StubServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
