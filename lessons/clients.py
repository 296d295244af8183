"""Client-side measurements of notebook 03 (async views), each a few requests from this
process against servers the notebook started:

* ``client_cost``: what an HTTP client itself costs, without Django: the CPU each
  library spends per request with many requests in flight (why the client choice can cap
  a view on one core): two async clients on the event loop, and a sync client shared by
  one thread per request in flight.
* ``burst``: ``n`` requests released at the same instant on fresh connections: how long
  until the last answer (one at a time or all together?) and how many OS threads the
  server holds per request while they are in flight.
* ``cheap_during``: the latency of a cheap request sent while a busy one is being served
  by the same worker (does the busy view block the others?).
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

__all__ = ["client_cost", "burst", "cheap_during"]


async def _drive(get: Any, url: str, concurrency: int, seconds: float) -> tuple[int, float, float]:
    done = 0
    start, cpu0 = time.monotonic(), time.process_time()

    async def worker() -> None:
        nonlocal done
        while time.monotonic() - start < seconds:
            await get(url)
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.monotonic() - start, time.process_time() - cpu0


def _drive_threads(client: Any, url: str, concurrency: int, seconds: float) -> tuple[int, float, float]:
    """A sync client shared by ``concurrency`` threads, each sending requests in turn (a
    def view's client under an ASGI server, where every request has its own thread)."""
    done = 0
    lock = threading.Lock()
    start, cpu0 = time.monotonic(), time.process_time()

    def worker() -> None:
        nonlocal done
        while time.monotonic() - start < seconds:
            client.get(url).raise_for_status()
            with lock:
                done += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done, time.monotonic() - start, time.process_time() - cpu0


async def client_cost(url: str, *, concurrency: int = 50, seconds: float = 3.0) -> Any:
    """req/s and CPU ms per request of httpx.AsyncClient and aiohttp (on this loop), and
    of one httpx.Client shared by ``concurrency`` threads, each with ``concurrency``
    requests in flight against ``url`` for ``seconds`` (a DataFrame; the CPU is this
    whole process's, which does nothing else meanwhile)."""
    import aiohttp
    import httpx
    import pandas as pd

    rows = []
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(limits=limits) as client:
        async def httpx_get(u: str) -> None:
            (await client.get(u)).raise_for_status()

        rows.append(("httpx.AsyncClient", *await _drive(httpx_get, url, concurrency, seconds)))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as session:
        async def aiohttp_get(u: str) -> None:
            async with session.get(u) as response:
                response.raise_for_status()
                await response.read()

        rows.append(("aiohttp", *await _drive(aiohttp_get, url, concurrency, seconds)))
    with httpx.Client(limits=limits) as sync_client:
        rows.append(("httpx.Client, one thread per request",
                     *await asyncio.to_thread(_drive_threads, sync_client, url, concurrency, seconds)))
    return pd.DataFrame(
        [{"client": name, "in flight": concurrency, "req/s": n / wall,
          "CPU ms per request": 1000 * cpu / n} for name, n, wall, cpu in rows]
    ).set_index("client")


# -- bursts -----------------------------------------------------------------------------

def _threads(processes: list[Any]) -> int:
    import psutil

    total = 0
    for p in processes:
        try:
            total += p.num_threads()
        except psutil.Error:
            pass
    return total


def _settled_threads(processes: list[Any], *, limit: float = 2.0) -> int:
    """The server's thread count once it stops changing (threads of earlier requests
    take a few milliseconds to exit)."""
    deadline = time.monotonic() + limit
    last = _threads(processes)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = _threads(processes)
        if now == last:
            return now
        last = now
    return last


def _burst(server: Any, path: str, n: int, timeout: float) -> dict[str, Any]:
    from lessons import probes

    processes = server.processes()
    base = _settled_threads(processes)
    barrier = threading.Barrier(n + 1)
    first_answer = threading.Event()
    replies: list[Any] = [None] * n

    def one(i: int) -> None:
        barrier.wait(timeout)
        replies[i] = probes.get(server.url, path, timeout=timeout)
        first_answer.set()

    workers = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for w in workers:
        w.start()
    barrier.wait(timeout)
    start = time.monotonic()
    # Threads are counted only until the first answer: every request is then in flight,
    # and none has yet started the thread that ends its per-request executor.
    peak = base
    while not first_answer.is_set():
        peak = max(peak, _threads(processes))
        first_answer.wait(0.002)
    for w in workers:
        w.join(timeout + 1)
    makespan = time.monotonic() - start
    bad = [r for r in replies if r is None or r.status != 200]
    if bad:
        first = bad[0]
        why = "no answer" if first is None else (first.error or f"HTTP {first.status}: {first.body[:200]!r}")
        raise RuntimeError(f"{len(bad)} of {n} requests to {path} failed; the first: {why}")
    return {"path": path, "requests": n, "makespan ms": 1000 * makespan,
            "slowest ms": 1000 * max(r.seconds for r in replies),
            "threads per request": (peak - base) / n}


async def burst(server: Any, path: str, n: int, *, timeout: float = 30.0) -> dict[str, Any]:
    """Send ``n`` GETs of ``path`` to ``server`` (a running LabServer) at the same instant,
    each on its own connection.  Returns the time from the release to the last answer
    (``makespan ms``), the slowest request, and the server's extra OS threads per request
    while they were all in flight (sampled until the first answer came back)."""
    return await asyncio.to_thread(_burst, server, path, n, timeout)


# -- a cheap request beside a busy one -------------------------------------------------

async def cheap_during(url: str, busy: str, cheap: str, *, after: float = 0.02,
                       repeats: int = 3, timeout: float = 30.0) -> dict[str, Any]:
    """``repeats`` times: send ``busy`` and, ``after`` seconds later (while it is being
    served), ``cheap``, each on a fresh connection.  Returns the cheap request's latencies
    (ms, one per repeat), their median, and the busy request's median latency."""
    from lessons import probes

    cheap_ms, busy_ms = [], []
    for _ in range(repeats):
        slow, quick = await asyncio.to_thread(probes.together, url, [busy, cheap],
                                              delays=[0.0, after], timeout=timeout)
        for reply in (slow, quick):
            if reply.status != 200:
                raise RuntimeError(f"{url}: {reply.error or f'HTTP {reply.status}'}")
        cheap_ms.append(1000 * quick.seconds)
        busy_ms.append(1000 * slow.seconds)
    return {"cheap ms": cheap_ms, "cheap median ms": statistics.median(cheap_ms),
            "busy median ms": statistics.median(busy_ms)}
