"""Lesson 3's endpoints beyond the upstream calls (tested in test_lab_instrument.py): CPU
work, a blocking library, long polls, file reads, async ORM queries, legacy sync code and
the WebSocket refusal, against the lab's PostgreSQL under both kinds of server.

Timing appears only as lower bounds that hold however slow the machine is (a query that
sleeps 30 ms in PostgreSQL cannot answer sooner)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import fetch, headers
from lessons.profile import Profile

DELAY_ONE = {"source": "upstream", "delay_ms": 1}


class Client:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str) -> tuple[int, Any]:
        """The status and the body, parsed when it is JSON."""
        reply = fetch(self.url, path, timeout=15)
        if headers(reply).get("content-type", "") == "application/json":
            return reply.status, reply.json()
        return reply.status, reply.body


@pytest.fixture(scope="module")
def upstream(lab) -> Iterator[str]:
    with lab.upstream(delay_ms=1) as up:
        yield up.url


def _profile(server: str, upstream_url: str) -> Profile:
    return Profile(server=server, middleware="none", extra_env=(("LAB_UPSTREAM_URL", upstream_url),))


@pytest.fixture(scope="module")
def wsgi(lab, upstream) -> Iterator[Client]:
    with lab.serve(_profile("gunicorn-sync", upstream)) as srv:
        yield Client(srv.url)


@pytest.fixture(scope="module")
def asgi(lab, upstream) -> Iterator[Client]:
    """uvicorn whose upstream URL has no /data (a 404): the blocking-library views must
    answer 502; every other view here does not call the upstream."""
    with lab.serve(_profile("uvicorn", upstream + "/missing")) as srv:
        yield Client(srv.url)


@pytest.mark.parametrize("path", ["/l03/cpu", "/l03/cpu-async"])
def test_cpu(asgi, path):
    assert asgi.get(path + "?ms=5") == (200, {"cpu_ms": 5})
    assert asgi.get(path) == (400, {"error": "ms must be a whole number from 0 to 1000, it is missing."})
    assert asgi.get(path + "?ms=1001") == (400, {"error": "ms must be a whole number from 0 to 1000, got '1001'."})


BLOCKING = ["/l03/blocking-lib", "/l03/async-blocking-lib", "/l03/async-blocking-lib-wrapped"]


@pytest.mark.parametrize("path", BLOCKING)
def test_blocking_library(wsgi, path):
    # Under WSGI the async views run on a per-request loop (async_to_sync): they work too.
    assert wsgi.get(path + "?delay_ms=1") == (200, {"upstream": DELAY_ONE})
    assert wsgi.get(path + "?delay_ms=x")[0] == 400


@pytest.mark.parametrize("path", BLOCKING)
def test_blocking_library_upstream_error_is_a_502(asgi, upstream, path):
    status, body = asgi.get(path + "?delay_ms=0")
    assert status == 502
    assert body == {"error": f"The upstream at {upstream}/missing/data answered HTTP 404."}


@pytest.mark.parametrize("path", ["/l03/poll", "/l03/poll-async"])
def test_poll(asgi, path):
    assert asgi.get(path + "?ms=0") == (200, {"events": [], "waited_ms": 0})
    assert asgi.get(path + "?ms=20") == (200, {"events": [], "waited_ms": 20})
    assert asgi.get(path + "?ms=60001")[0] == 400


@pytest.mark.parametrize("path", ["/l03/file", "/l03/file-async"])
def test_file(wsgi, asgi, path):
    assert asgi.get(path + "?kb=1") == (200, {"bytes": 1024})
    assert asgi.get(path) == (200, {"bytes": 1024 * 1024})
    assert wsgi.get(path + "?kb=4096") == (200, {"bytes": 4096 * 1024})
    assert asgi.get(path + "?kb=0") == (400, {"error": "kb must be a whole number from 1 to 4096, got '0'."})


@pytest.mark.parametrize("mode", ["sequential", "gather"])
def test_queries_run_one_after_another(asgi, mode):
    status, body = asgi.get(f"/l03/queries?mode={mode}&n=3&ms=30")
    assert status == 200
    assert {k: body[k] for k in ("mode", "n", "ms")} == {"mode": mode, "n": 3, "ms": 30}
    # Gathered or not, the three queries share the request's one thread: at least 3 x 30 ms.
    assert body["elapsed_ms"] >= 90


def test_queries_bad_parameters(asgi):
    assert asgi.get("/l03/queries?mode=threads") == (
        400, {"error": "mode must be one of gather, sequential, got 'threads'."})
    assert asgi.get("/l03/queries?n=11")[0] == 400
    assert asgi.get("/l03/queries?ms=2001")[0] == 400


def test_legacy_code(wsgi, asgi):
    for client in (wsgi, asgi):
        status, rows = client.get("/l03/legacy")
        assert status == 200 and len(rows) == 5 and set(rows[0]) == {"id", "name"}
    status, _ = asgi.get("/l03/legacy-async")
    assert status == 500  # SynchronousOnlyOperation


def test_websocket_is_refused(asgi):
    import websockets

    assert asgi.get("/l03/ws") == (200, {"protocol": "http"})

    async def handshake() -> int:
        try:
            async with websockets.connect(asgi.url.replace("http://", "ws://") + "/l03/ws", open_timeout=10):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(handshake()) == 500
