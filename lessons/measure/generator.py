"""The load generator inside one load process: its schedule, connections and counters.

Plain asyncio (+uvloop) and httptools, no numpy.  ``lessons.measure.child`` runs it;
``lessons.measure.launch`` describes what is counted.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from array import array
from collections import deque
from typing import Any

from lessons.measure.spec import LATE_MS, LoadSpec
from lessons.measure.timing import precise_timer, proc_stat

__all__ = ["Generator"]


class Connection(asyncio.Protocol):
    __slots__ = ("gen", "parser", "transport", "busy", "dead", "intended", "measured")

    def __init__(self, gen: Generator) -> None:
        import httptools

        self.gen = gen
        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.busy = False
        self.dead = False
        self.intended = 0.0
        self.measured = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:  # noqa: BLE001 - httptools.HttpParserError and friends
            self.gen.failed(self)

    def on_message_complete(self) -> None:
        self.gen.response(self, self.parser.get_status_code(), self.parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class Generator:
    """One load process: the schedule, the connections and the counters."""

    def __init__(self, spec: LoadSpec, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clock = time.perf_counter
        self.host, self.port = spec.host, spec.port
        self.reqs = [r.encode("latin-1") for r in spec.requests]
        self.req0 = self.reqs[0]
        self.nreq = len(self.reqs)
        self.ri = 0
        self.open = spec.open
        self.n_conns = spec.connections
        self.max_conns = spec.max_connections
        self.max_backlog = self.max_conns
        self.rate = spec.rate
        self.timeout = spec.timeout
        self.poisson = spec.arrival == "poisson"
        self.rng = random.Random(spec.seed)
        self.late_s = LATE_MS / 1e3
        self.lat = array("d")
        self.lag = array("d")
        self.ok = self.non_2xx = self.connect_errors = self.resets = self.timeouts = 0
        self.dropped = self.late = self.scheduled = 0
        self.pool: set[Connection] = set()
        self.free: list[Connection] = []
        self.backlog: deque[float] = deque()
        self.connecting = 0
        self.inflight = 0
        self.peak = 0
        self.stopping = False
        self.done: asyncio.Future[None] = loop.create_future()
        self.t0 = self.clock()
        self.ws = self.t0 + spec.warmup
        self.we = self.ws + spec.duration
        self.hard_end = self.we + self.timeout
        self.cpu_ws = self.cpu_we = 0.0
        self.wall_ws = self.wall_we = 0.0
        self.stat_ws: dict[int, tuple[int, int]] | None = None
        self.stat_we: dict[int, tuple[int, int]] | None = None
        self.timer = precise_timer() if self.open else None
        self.timer_handle: Any = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        loop, now = self.loop, self.clock()
        loop.call_at(loop.time() + (self.ws - now), self._window_start)
        loop.call_at(loop.time() + (self.we - now), self._window_end)
        self.check_every = max(0.005, min(0.05, self.timeout / 10))
        loop.call_later(self.check_every, self._check)
        if self.open:
            for _ in range(min(self.n_conns, self.max_conns)):
                self._connect()
            self.i = 0
            self.next_t = self.t0
            if self.timer is not None:
                fd, self.arm = self.timer
                loop.add_reader(fd, self._timer_fired)
            self._tick()
        else:
            for _ in range(self.n_conns):
                self._connect()

    def _window_start(self) -> None:
        self.cpu_ws, self.wall_ws = time.process_time(), self.clock()
        self.stat_ws = proc_stat()

    def _window_end(self) -> None:
        self.cpu_we, self.wall_we = time.process_time(), self.clock()
        self.stat_we = proc_stat()

    def _finish(self) -> None:
        if self.done.done():
            return
        self.stopping = True
        ws, to = self.ws, self.timeout
        for c in list(self.pool):
            if c.busy and c.measured:   # past its deadline by now
                self.timeouts += 1
                self.lat.append(to)
            c.busy = False
            c.dead = True
            if c.transport is not None:
                c.transport.abort()
        self.pool.clear()
        self.free.clear()
        for intended in self.backlog:
            if intended >= ws:
                self.dropped += 1
        self.backlog.clear()
        self.inflight = 0
        if self.timer is not None:
            self.loop.remove_reader(self.timer[0])
        if not self.wall_we:
            self._window_end()
        self.done.set_result(None)

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> None:
        self.connecting += 1
        self.loop.create_task(self._connect_one())

    async def _connect_one(self) -> None:
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: Connection(self), self.host, self.port),
                self.timeout)
        except (OSError, asyncio.TimeoutError):
            self.connecting -= 1
            if self.stopping:
                return
            if self.open:
                if self.backlog:        # the request that wanted this connection fails
                    intended = self.backlog.popleft()
                    if intended >= self.ws:
                        self.connect_errors += 1
                    self._replace()
                return
            if self.ws <= self.clock() < self.we:
                self.connect_errors += 1
            await asyncio.sleep(0.01)   # a refused connection: do not spin
            if self.clock() < self.we and not self.stopping:
                self._connect()
            return
        self.connecting -= 1
        if self.stopping:
            conn.transport.abort()
            return
        self.pool.add(conn)
        n = len(self.pool)
        if n > self.peak:
            self.peak = n
        now = self.clock()
        if self.open:
            self._next_for(conn, now)
        elif now < self.we:
            self._send(conn, now, now)
        else:
            self._drop_conn(conn)

    def _drop_conn(self, conn: Connection, abort: bool = False) -> None:
        conn.dead = True
        self.pool.discard(conn)
        if conn.transport is not None:
            if abort:
                conn.transport.abort()
            else:
                conn.transport.close()

    def _replace(self) -> None:
        """A connection is gone: closed loop reconnects its slot, open loop opens what the
        waiting requests need."""
        if self.stopping:
            return
        if not self.open:
            if self.clock() < self.we:
                self._connect()
            return
        backlog = self.backlog
        while (backlog and self.connecting < len(backlog)
               and len(self.pool) + self.connecting < self.max_conns):
            self._connect()

    # -- requests ----------------------------------------------------------------------

    def _send(self, conn: Connection, intended: float, now: float) -> None:
        conn.intended = intended
        conn.busy = True
        self.inflight += 1
        if intended >= self.ws:
            conn.measured = True
            if self.open:
                lag = now - intended
                self.lag.append(lag)
                if lag > self.late_s:
                    self.late += 1
            else:
                self.scheduled += 1
        else:
            conn.measured = False
        if self.nreq == 1:
            conn.transport.write(self.req0)
        else:
            conn.transport.write(self.reqs[self.ri % self.nreq])
            self.ri += 1

    def response(self, conn: Connection, status: int, keep: bool) -> None:
        now = self.clock()
        if not conn.busy:
            return  # a response nobody asked for (or after a timeout): ignore
        conn.busy = False
        self.inflight -= 1
        if conn.measured:
            self.lat.append(now - conn.intended)
            if 200 <= status < 300:
                self.ok += 1
            else:
                self.non_2xx += 1
        if not keep:
            self._drop_conn(conn)
            self._replace()
        elif self.open:
            self._next_for(conn, now)
        elif now < self.we:
            self._send(conn, now, now)
        if now >= self.we and not self.inflight and not self.backlog \
                and (not self.open or self.sched_done):
            self._finish()

    def failed(self, conn: Connection) -> None:
        """An unreadable response: count it and close the connection."""
        if conn.dead:
            return
        if conn.busy:
            self._error(conn)
        else:
            self._drop_conn(conn)
            self._replace()
        if conn.transport is not None:
            conn.transport.abort()

    def lost(self, conn: Connection) -> None:
        if conn.dead:
            return
        conn.dead = True
        self.pool.discard(conn)
        if conn in self.free:
            self.free.remove(conn)
        if conn.busy:
            self._error(conn)
        else:
            self._replace()   # an idle connection closed by the server

    def _error(self, conn: Connection) -> None:
        conn.busy = False
        conn.dead = True
        self.pool.discard(conn)
        self.inflight -= 1
        if conn.measured:
            self.resets += 1
        self._replace()

    def _next_for(self, conn: Connection, now: float) -> None:
        """A connection is free: give it the oldest waiting request, or park it."""
        backlog = self.backlog
        while backlog:
            intended = backlog.popleft()
            if now - intended >= self.timeout:
                if intended >= self.ws:
                    self.dropped += 1
                continue
            self._send(conn, intended, now)
            return
        self.free.append(conn)

    # -- the open-loop schedule --------------------------------------------------------

    sched_done = False

    def _timer_fired(self) -> None:
        try:
            os.read(self.timer[0], 8)
        except BlockingIOError:
            return
        self._tick()

    def _loop_timer(self) -> None:
        self.timer_handle = None
        self._tick()

    def _tick(self) -> None:
        now = self.clock()
        we, ws = self.we, self.ws
        while self.next_t <= now + 20e-6:
            t = self.next_t
            if t >= we:
                self.sched_done = True
                return
            if t >= ws:
                self.scheduled += 1
            self._dispatch(t, now)
            self.i += 1
            if self.poisson:
                self.next_t = t + self.rng.expovariate(self.rate)
            else:
                self.next_t = self.t0 + self.i / self.rate
        if self.next_t >= we:
            self.sched_done = True
            return
        if self.timer is not None:
            self.arm(self.next_t)
        elif self.timer_handle is None:
            self.timer_handle = self.loop.call_at(
                self.loop.time() + (self.next_t - now), self._loop_timer)

    def _dispatch(self, intended: float, now: float) -> None:
        if self.free:
            self._send(self.free.pop(), intended, now)
            return
        backlog = self.backlog
        if len(backlog) >= self.max_backlog:
            if intended >= self.ws:
                self.dropped += 1
            return
        backlog.append(intended)
        if self.connecting < len(backlog) and len(self.pool) + self.connecting < self.max_conns:
            self._connect()

    # -- timeouts and the end ----------------------------------------------------------

    def _check(self) -> None:
        if self.done.done():
            return
        now = self.clock()
        to = self.timeout
        for c in list(self.pool):
            if c.busy and now - c.intended >= to:
                c.busy = False
                self.inflight -= 1
                if c.measured:
                    self.timeouts += 1
                    self.lat.append(to)
                self._drop_conn(c, abort=True)
                self._replace()
        backlog, ws = self.backlog, self.ws
        while backlog and now - backlog[0] >= to:
            if backlog.popleft() >= ws:
                self.dropped += 1
        if now >= self.hard_end or (now >= self.we and not self.inflight and not backlog
                                    and (not self.open or self.sched_done)):
            self._finish()
            return
        self.loop.call_later(self.check_every, self._check)
