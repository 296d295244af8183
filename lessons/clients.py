"""What an async HTTP client itself costs, without Django: the CPU each library spends
per request with many requests in flight.  Notebook 03 uses it to show why the client
choice can cap an async view on one core."""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["client_cost"]


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


async def client_cost(url: str, *, concurrency: int = 50, seconds: float = 3.0) -> Any:
    """req/s and CPU ms per request of httpx.AsyncClient and aiohttp, each with
    ``concurrency`` requests in flight against ``url`` for ``seconds`` (a DataFrame)."""
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
    return pd.DataFrame(
        [{"client": name, "in_flight": concurrency, "rps": n / wall,
          "cpu_ms_per_request": 1000 * cpu / n} for name, n, wall, cpu in rows]
    )
