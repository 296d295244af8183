"""
"The external API" that lesson 3's views call: a slow service whose slowness is only
waiting, which is exactly what async views are for.

A bare ASGI application (no Django, no framework) so that it is cheap and never the
bottleneck of a measurement: one process on one event loop holds thousands of
concurrent sleeps. Run it in its own process, from ``lab_project``::

    uvicorn upstream.app:app --loop uvloop --http httptools --port 8001

``GET /data?delay_ms=N`` waits N ms (``asyncio.sleep``, 0 to 60000) and answers
``{"source": "upstream", "delay_ms": N}``; ``GET /healthz`` answers ``{"status": "ok"}``.
Every response has a Content-Length, so clients keep their connections alive.

It is not part of the Django project, so it reads its one knob itself:
``LAB_UPSTREAM_DELAY_MS``, the delay when a request gives none (default 50).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import parse_qs

MAX_DELAY_MS = 60_000
_DELAY_NAME = "LAB_UPSTREAM_DELAY_MS"


def _whole_ms(raw: str) -> int | None:
    """A delay from 0 to MAX_DELAY_MS written as plain ASCII digits, else None."""
    if raw.isascii() and raw.isdigit() and int(raw) <= MAX_DELAY_MS:
        return int(raw)
    return None


def _default_delay_ms() -> int:
    raw = os.environ.get(_DELAY_NAME, "").strip()
    if not raw:
        return 50
    delay = _whole_ms(raw)
    if delay is None:
        # Refuse to start rather than measure a different delay than the one asked for.
        raise SystemExit(
            f"{_DELAY_NAME}={raw!r} is invalid; allowed values: a whole number of ms "
            f"from 0 to {MAX_DELAY_MS}."
        )
    return delay


DEFAULT_DELAY_MS = _default_delay_ms()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return  # no websockets here
    path, method = scope["path"], scope["method"]
    if path not in ("/data", "/healthz"):
        await _json(send, 404, {"error": f"No such path {path!r}: use /data or /healthz."})
    elif method not in ("GET", "HEAD"):
        await _json(send, 405, {"error": f"Method {method} is not allowed: use GET."})
    elif path == "/healthz":
        await _json(send, 200, {"status": "ok"})
    else:
        query = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        raw = query.get("delay_ms", [None])[-1]
        delay = DEFAULT_DELAY_MS if raw is None else _whole_ms(raw)
        if delay is None:
            allowed = f"a whole number from 0 to {MAX_DELAY_MS}"
            await _json(send, 400, {"error": f"delay_ms must be {allowed}, got {raw!r}."})
            return
        await asyncio.sleep(delay / 1000)
        await _json(send, 200, {"source": "upstream", "delay_ms": delay})


async def _json(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    """Nothing to set up; answering lifespan keeps servers from logging a warning."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
