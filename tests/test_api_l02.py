"""Lesson 2's endpoints against real servers: the sync sleep, CPU and pid views, the
async sleeps, and what gunicorn's ``--timeout`` does to them under
``uvicorn_worker.UvicornWorker`` (the lab's ``gunicorn-uvicorn``).

``/l02/sleep-async`` awaits ``asyncio.sleep``: the event loop stays free, so the worker's
heartbeat keeps beating and ``--timeout`` does not bound the request.  ``/l02/block-async``
calls ``time.sleep`` inside ``async def``: the loop is blocked, the heartbeat stops, and
gunicorn's arbiter kills the worker.  These start servers: run them under the machine lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from helpers import Client
from lessons import probes
from lessons.profile import Profile

ASYNC_PATHS = ["/l02/sleep-async", "/l02/block-async"]
BAD_MS = ["-1", "abc", "1.5", "", " 5", "٣", "99999999999"]


@pytest.fixture(scope="module")
def uvicorn(lab) -> Iterator[str]:
    """uvicorn, no middleware, one worker."""
    with lab.serve(Profile(server="uvicorn", middleware="none")) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def gunicorn_sync(lab) -> Iterator[str]:
    """gunicorn's sync worker, no middleware, one worker."""
    with lab.serve(Profile(server="gunicorn-sync", middleware="none")) as srv:
        yield srv.url


@pytest.fixture(params=["uvicorn", "gunicorn-sync"])
def server(request: pytest.FixtureRequest) -> str:
    """The async views under ASGI (uvicorn) and under WSGI (gunicorn's sync worker)."""
    return request.getfixturevalue(request.param.replace("-", "_"))


@pytest.fixture(scope="module")
def client(uvicorn) -> Iterator[Client]:
    """One keep-alive connection to the uvicorn server, for the sync views."""
    one = Client(uvicorn)
    yield one
    one.close()


# The sync views #########################################################################


def test_l02(client):
    assert client.get("/l02/sleep?ms=0") == (200, {"slept_ms": 0})
    assert client.get("/l02/sleep?ms=5") == (200, {"slept_ms": 5})
    assert client.get("/l02/cpu?ms=0") == (200, {"cpu_ms": 0})
    assert client.get("/l02/cpu?ms=5") == (200, {"cpu_ms": 5})
    status, body = client.get("/l02/pid")
    assert status == 200 and list(body) == ["pid"] and body["pid"] > 1
    assert client.get("/l02/pid") == (200, body)  # one worker: the same process


@pytest.mark.parametrize(
    ("path", "maximum", "raw"),
    [("/l02/sleep", 60000, raw) for raw in [*BAD_MS, "60001"]]
    + [("/l02/cpu", 1000, raw) for raw in [*BAD_MS, "1001"]],
)
def test_l02_bad_ms(client, path, maximum, raw):
    status, body = client.get(f"{path}?{urlencode({'ms': raw})}")
    assert status == 400
    assert body == {"error": f"ms must be a whole number from 0 to {maximum}, got {raw!r}."}


@pytest.mark.parametrize(("path", "maximum"), [("/l02/sleep", 60000), ("/l02/cpu", 1000)])
def test_l02_missing_ms(client, path, maximum):
    assert client.get(path) == (
        400, {"error": f"ms is missing: give a whole number from 0 to {maximum}, e.g. ?ms=100."}
    )


# The async views ########################################################################


@pytest.mark.parametrize("path", ASYNC_PATHS)
@pytest.mark.parametrize("ms", [0, 5])
def test_async_sleeps_answer(server, path, ms):
    reply = probes.get(server, f"{path}?ms={ms}", timeout=10)
    assert reply.status == 200
    assert reply.json() == {"slept_ms": ms}


@pytest.mark.parametrize("path", ASYNC_PATHS)
@pytest.mark.parametrize("raw", [*BAD_MS, "60001"])
def test_async_sleeps_bad_ms(server, path, raw):
    reply = probes.get(server, f"{path}?{urlencode({'ms': raw})}", timeout=10)
    assert reply.status == 400
    assert reply.json() == {"error": f"ms must be a whole number from 0 to 60000, got {raw!r}."}


@pytest.mark.parametrize("path", ASYNC_PATHS)
def test_async_sleeps_missing_ms(server, path):
    reply = probes.get(server, path, timeout=10)
    assert reply.status == 400
    assert reply.json() == {
        "error": "ms is missing: give a whole number from 0 to 60000, e.g. ?ms=100."}


@pytest.fixture(scope="module")
def uvicorn_worker_timeout_2(lab) -> Iterator[str]:
    """gunicorn + uvicorn_worker.UvicornWorker, one worker, ``--timeout 2``."""
    profile = Profile(server="gunicorn-uvicorn", middleware="none", server_args=("--timeout", "2"))
    with lab.serve(profile) as srv:
        yield srv


def test_timeout_does_not_bound_an_awaiting_request(uvicorn_worker_timeout_2):
    """3 s of awaiting under --timeout 2: the heartbeat beats on, the answer is a 200."""
    srv = uvicorn_worker_timeout_2
    reply = probes.get(srv.url, "/l02/sleep-async?ms=3000", timeout=10)
    assert reply.status == 200, (reply, srv.logs(20))
    assert reply.json() == {"slept_ms": 3000}
    assert reply.seconds >= 3.0
    assert "WORKER TIMEOUT" not in srv.logs(200)


def test_timeout_kills_a_worker_whose_loop_is_blocked(uvicorn_worker_timeout_2):
    """5 s of time.sleep inside async def under --timeout 2: no HTTP answer, the worker is
    killed (the arbiter logs WORKER TIMEOUT) and replaced, and the server answers again."""
    srv = uvicorn_worker_timeout_2
    reply = probes.get(srv.url, "/l02/block-async?ms=5000", timeout=10)
    assert reply.status is None, reply
    assert reply.seconds < 5.0
    assert "WORKER TIMEOUT" in srv.logs(200)
    again = probes.get(srv.url, "/l01/hello", timeout=20)
    assert again.status == 200
