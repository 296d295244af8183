"""Lesson 3's endpoints against real servers under both kinds of server: one and two
upstream calls (sync, async with httpx, async with aiohttp), CPU work, a blocking library,
long polls, file reads, async ORM queries on the lab's PostgreSQL, legacy sync code and
the WebSocket refusal; and the upstream stand-in they call (``lab_project/upstream``).

Timing appears only as lower bounds that hold however slow the machine is (a query that
sleeps 30 ms in PostgreSQL cannot answer sooner)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from helpers import Client, django_get, fetch
from lessons.profile import Profile

DELAY_ONE = {"source": "upstream", "delay_ms": 1}


@pytest.fixture(scope="module")
def upstream(lab) -> Iterator[str]:
    """The upstream stand-in, as lesson 3 runs it (its default delay, 50 ms)."""
    with lab.upstream() as up:
        yield up.url


def _serve(lab, upstream_url: str, server: str, instrument: bool = False) -> Iterator[Client]:
    profile = Profile(server=server, middleware="none", instrument=instrument,
                      extra_env=(("LAB_UPSTREAM_URL", upstream_url),))
    with lab.serve(profile) as srv:
        client = Client(srv.url)
        yield client
        client.close()


@pytest.fixture(scope="module")
def wsgi(lab, upstream) -> Iterator[Client]:
    yield from _serve(lab, upstream, "gunicorn-sync")


@pytest.fixture(scope="module")
def asgi_counted(lab, upstream) -> Iterator[Client]:
    """uvicorn with the counters on (thread hops and threads per request)."""
    yield from _serve(lab, upstream, "uvicorn", instrument=True)


@pytest.fixture(scope="module")
def asgi(lab, upstream) -> Iterator[Client]:
    """uvicorn whose upstream URL has no /data (a 404): the views that call the upstream
    must answer 502; every other view tested on it does not call the upstream."""
    yield from _serve(lab, upstream + "/missing", "uvicorn")


# The upstream stand-in ##################################################################


def test_upstream(upstream):
    def get(path: str) -> tuple[int, bytes]:
        reply = fetch(upstream, path, timeout=2.0)
        return reply.status, reply.body

    assert get("/data?delay_ms=1") == (200, b'{"source": "upstream", "delay_ms": 1}')
    assert get("/healthz") == (200, b'{"status": "ok"}')
    status, body = get("/data?delay_ms=soon")
    assert status == 400
    assert json.loads(body) == {
        "error": "delay_ms must be a whole number from 0 to 60000, got 'soon'."
    }
    assert get("/nowhere")[0] == 404


def test_upstream_default_delay_is_50_ms(upstream):
    reply = fetch(upstream, "/data", timeout=2.0)
    assert (reply.status, reply.json()) == (200, {"source": "upstream", "delay_ms": 50})


# Upstream calls #########################################################################


@pytest.mark.parametrize("fixture", ["wsgi", "asgi_counted"])
@pytest.mark.parametrize("path", ["/l03/sync-upstream", "/l03/async-upstream",
                                  "/l03/async-upstream-aiohttp"])
def test_one_upstream_call(request, fixture, path):
    client = request.getfixturevalue(fixture)
    assert client.get(path + "?delay_ms=1") == (200, {"upstream": DELAY_ONE})


@pytest.mark.parametrize("fixture", ["wsgi", "asgi_counted"])
@pytest.mark.parametrize(
    "path", ["/l03/sync-two", "/l03/async-two-sequential", "/l03/async-two-gather"]
)
def test_two_upstream_calls(request, fixture, path):
    client = request.getfixturevalue(fixture)
    assert client.get(path + "?delay_ms=1") == (200, {"upstream": [DELAY_ONE, DELAY_ONE]})


def test_async_views_reuse_one_client_per_loop_under_asgi(asgi_counted):
    """No thread hop and no new thread for the upstream call itself."""
    one = asgi_counted.per_request("/l03/async-upstream?delay_ms=0")
    two = asgi_counted.per_request("/l03/async-two-gather?delay_ms=0")
    aio = asgi_counted.per_request("/l03/async-upstream-aiohttp?delay_ms=0")
    hello = asgi_counted.per_request("/l01/hello-async")
    assert one == two == aio == hello


L03 = ["sync-upstream", "async-upstream", "async-upstream-aiohttp", "sync-two", "async-two-sequential",
       "async-two-gather"]  # fmt: skip


@pytest.mark.parametrize("name", L03)
def test_l03_bad_delay(asgi_counted, name):
    status, body = asgi_counted.get(f"/l03/{name}?delay_ms=-5")
    assert status == 400
    assert body == {"error": "delay_ms must be a whole number from 0 to 60000, got '-5'."}


@pytest.mark.parametrize("name", L03)
def test_l03_upstream_error_is_a_502(asgi, upstream, name):
    status, body = asgi.get(f"/l03/{name}?delay_ms=0")
    assert status == 502
    assert body == {"error": f"The upstream at {upstream}/missing/data answered HTTP 404."}


@pytest.mark.parametrize("name", L03)
def test_l03_without_upstream_url_is_a_503(lab_django, name):
    """In this process (the ``lab_django`` fixture: no LAB_UPSTREAM_URL), through Django's
    ASGI handler: no server to start for an answer that never leaves the view."""
    response = django_get(f"/l03/{name}", use_async=True)
    assert response.status_code == 503
    assert response.json()["error"].startswith("LAB_UPSTREAM_URL is not set")


# The other views ########################################################################


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
