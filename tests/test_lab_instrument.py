"""
Tests for the lab's counters (LAB_INSTRUMENT=1), the upstream stand-in, and the lesson 2
and lesson 3 endpoints, against real servers on a small SQLite database.

Every process goes through lessons.procs (LabServer uses it too), so none outlives a
crashed test. Counts are exact integers per request: each case sends N requests one
after another on one keep-alive connection, twice, and asserts that each delta is a
multiple of N and that both rounds agree. No assertion depends on wall-clock time.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from helpers import fetch
from lessons.profile import Profile
from lessons.server import LabServer, Upstream

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab_project"
COUNTERS = "/__lab__/counters"
NAMES = ("sync_to_async", "async_to_sync", "threads_started", "queries", "requests")
N = 10


# Lab middleware #########################################################################


def test_query_wrapper_is_installed_once_per_connection_object():
    """connection_created fires on every reconnect (and pool checkout) of one object."""
    sys.path.insert(0, str(LAB))
    try:
        from lab import instrument
    finally:
        sys.path.remove(str(LAB))

    class Connection:
        execute_wrappers: list[Any]

    one, two = Connection(), Connection()
    one.execute_wrappers, two.execute_wrappers = [], []
    for _ in range(3):
        instrument._hook_connection(None, connection=one)
    instrument._hook_connection(None, connection=two)
    assert one.execute_wrappers == [instrument._count_query]
    assert two.execute_wrappers == [instrument._count_query]


# Processes ##############################################################################


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DJANGO_"))}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file with a few rows."""
    url = f"sqlite://{tmp_path_factory.mktemp('db')}/lab.sqlite3"
    env = _clean_env() | {"LAB_DATABASE_URL": url, "LAB_MIDDLEWARE": "none"}
    for args in (
        ["migrate", "-v0"],
        ["seed_lab", "--items", "20", "--customers", "3", "--orders", "10"],
    ):
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=LAB, env=env, capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    return url


def _get(url: str, path: str) -> tuple[int, bytes]:
    reply = fetch(url, path, timeout=2.0)
    return reply.status, reply.body


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The upstream stand-in, as lesson 3 runs it (its default delay, 50 ms)."""
    with Upstream(home=tmp_path_factory.mktemp("upstream")).start() as up:
        yield up.url


@contextmanager
def serve(home: Path, server: str, database: str, middleware: str = "none",
          **env: str) -> Iterator[LabServer]:
    """The lab project under ``server``, with no LAB_* variable from this environment."""
    profile = Profile(server=server, middleware=middleware, database="sqlite")
    base = {"LAB_DATABASE_URL": database, "LAB_SECRET_KEY": "instrument-tests",
            "LAB_INSTRUMENT": "0", "LAB_UPSTREAM_URL": ""}
    srv = LabServer(profile, env=base | env, home=home)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("LAB_"):
                mp.delenv(name)
        srv.start()  # reads os.environ here, once
    try:
        yield srv
    finally:
        srv.stop()


class Client:
    """One keep-alive connection (gunicorn's sync worker closes it; http.client reopens)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=15)

    def get(self, path: str) -> tuple[int, Any]:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        ctype = response.getheader("Content-Type", "")
        return response.status, json.loads(body) if ctype == "application/json" else body

    def counters(self) -> dict[str, int]:
        status, body = self.get(COUNTERS)
        assert status == 200
        return body

    def per_request(self, path: str) -> dict[str, int]:
        """Exact counts per request of ``path``: N requests, twice, same integers."""
        self.get(path)  # warm: first-request imports and lazily made objects
        rounds = []
        for _ in range(2):
            before = self.counters()
            for _ in range(N):
                status, body = self.get(path)
                assert status == 200, body
            after = self.counters()
            assert after["pid"] == before["pid"]
            deltas = {name: after[name] - before[name] for name in NAMES}
            assert all(d % N == 0 for d in deltas.values()), (path, deltas)
            rounds.append({name: d // N for name, d in deltas.items()})
        assert rounds[0] == rounds[1], (path, rounds)
        return rounds[0]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def wsgi(tmp_path_factory, database, upstream) -> Iterator[Client]:
    home = tmp_path_factory.mktemp("wsgi")
    with serve(home, "gunicorn-sync", database, "default", LAB_INSTRUMENT="1",
               LAB_UPSTREAM_URL=upstream) as srv:
        client = Client(srv.url)
        yield client
        client.close()


@pytest.fixture(scope="module")
def asgi_none(tmp_path_factory, database, upstream) -> Iterator[Client]:
    home = tmp_path_factory.mktemp("asgi-none")
    with serve(home, "uvicorn", database, "none", LAB_INSTRUMENT="1",
               LAB_UPSTREAM_URL=upstream) as srv:
        client = Client(srv.url)
        yield client
        client.close()


@pytest.fixture(scope="module")
def asgi_default(tmp_path_factory, database, upstream) -> Iterator[Client]:
    # An upstream URL whose /data is a 404: lesson 3's views must answer 502.
    home = tmp_path_factory.mktemp("asgi-default")
    with serve(home, "uvicorn", database, "default", LAB_INSTRUMENT="1",
               LAB_UPSTREAM_URL=upstream + "/missing") as srv:
        client = Client(srv.url)
        yield client
        client.close()


@pytest.fixture(scope="module")
def plain(tmp_path_factory, database) -> Iterator[Client]:
    """LAB_INSTRUMENT=0 and no LAB_UPSTREAM_URL: the project as the other lessons run it."""
    home = tmp_path_factory.mktemp("plain")
    with serve(home, "uvicorn", database, "none") as srv:
        client = Client(srv.url)
        yield client
        client.close()


# Counters ###############################################################################


def test_wsgi_sync_views_make_no_hops(wsgi):
    assert wsgi.per_request("/l01/hello") == {
        "sync_to_async": 0, "async_to_sync": 0, "threads_started": 0, "queries": 0,
        "requests": 1,
    }  # fmt: skip
    assert wsgi.per_request("/l01/items?limit=5") == {
        "sync_to_async": 0, "async_to_sync": 0, "threads_started": 0, "queries": 1,
        "requests": 1,
    }  # fmt: skip


def test_wsgi_async_view_runs_on_a_new_loop_per_request(wsgi):
    counts = wsgi.per_request("/l01/hello-async")
    assert counts["async_to_sync"] == 1 and counts["sync_to_async"] == 0
    assert counts["threads_started"] >= 1  # the new loop's thread
    # The async ORM hops back to the request's own WSGI thread: one hop, no new thread.
    items = wsgi.per_request("/l01/items-async?limit=5")
    assert items["sync_to_async"] == 1 and items["queries"] == 1
    assert items["threads_started"] == counts["threads_started"]


def test_asgi_hops(asgi_none, asgi_default):
    sync_default = asgi_default.per_request("/l01/hello")
    async_none = asgi_none.per_request("/l01/hello-async")
    sync_none = asgi_none.per_request("/l01/hello")
    items_async = asgi_none.per_request("/l01/items-async?limit=5")
    assert sync_default["sync_to_async"] > async_none["sync_to_async"] >= 1
    # A sync view is one hop; so is the async ORM's one query.
    assert sync_none["sync_to_async"] == async_none["sync_to_async"] + 1
    assert items_async["sync_to_async"] == async_none["sync_to_async"] + 1
    assert items_async["queries"] == 1
    # Hops from the loop into threads, never the other way, under ASGI.
    assert {c["async_to_sync"] for c in (sync_default, async_none, sync_none)} == {0}
    # The per-request thread-sensitive executor starts OS threads on every request.
    assert async_none["threads_started"] >= 1
    assert sync_default["requests"] == async_none["requests"] == 1


@pytest.mark.parametrize("fixture", ["wsgi", "asgi_none"])
def test_reading_the_counters_costs_nothing(request, fixture):
    client = request.getfixturevalue(fixture)
    client.get("/l01/hello")
    first = client.counters()
    for _ in range(5):
        last = client.counters()
    assert last == first
    assert set(first) == {*NAMES, "pid"}


def test_counters_are_a_django_404_when_off(plain):
    status, body = plain.get(COUNTERS)
    assert status == 404
    assert b"<title>Not Found</title>" in body


# Upstream ###############################################################################


def test_upstream(upstream):
    assert _get(upstream, "/data?delay_ms=1") == (
        200, b'{"source": "upstream", "delay_ms": 1}'
    )
    assert _get(upstream, "/healthz") == (200, b'{"status": "ok"}')
    status, body = _get(upstream, "/data?delay_ms=soon")
    assert status == 400
    assert json.loads(body) == {
        "error": "delay_ms must be a whole number from 0 to 60000, got 'soon'."
    }
    assert _get(upstream, "/nowhere")[0] == 404


def test_upstream_default_delay_is_50_ms(upstream):
    status, body = _get(upstream, "/data")
    assert (status, json.loads(body)) == (200, {"source": "upstream", "delay_ms": 50})


# Lesson 3 ###############################################################################

ONE = {"source": "upstream", "delay_ms": 1}


@pytest.mark.parametrize("fixture", ["wsgi", "asgi_none"])
@pytest.mark.parametrize("path", ["/l03/sync-upstream", "/l03/async-upstream",
                                  "/l03/async-upstream-aiohttp"])
def test_one_upstream_call(request, fixture, path):
    client = request.getfixturevalue(fixture)
    assert client.get(path + "?delay_ms=1") == (200, {"upstream": ONE})


@pytest.mark.parametrize("fixture", ["wsgi", "asgi_none"])
@pytest.mark.parametrize(
    "path", ["/l03/sync-two", "/l03/async-two-sequential", "/l03/async-two-gather"]
)
def test_two_upstream_calls(request, fixture, path):
    client = request.getfixturevalue(fixture)
    assert client.get(path + "?delay_ms=1") == (200, {"upstream": [ONE, ONE]})


def test_async_views_reuse_one_client_per_loop_under_asgi(asgi_none):
    """No thread hop and no new thread for the upstream call itself."""
    one = asgi_none.per_request("/l03/async-upstream?delay_ms=0")
    two = asgi_none.per_request("/l03/async-two-gather?delay_ms=0")
    aio = asgi_none.per_request("/l03/async-upstream-aiohttp?delay_ms=0")
    hello = asgi_none.per_request("/l01/hello-async")
    assert one == two == aio == hello


L03 = ["sync-upstream", "async-upstream", "async-upstream-aiohttp", "sync-two", "async-two-sequential",
       "async-two-gather"]  # fmt: skip


@pytest.mark.parametrize("name", L03)
def test_l03_bad_delay(asgi_none, name):
    status, body = asgi_none.get(f"/l03/{name}?delay_ms=-5")
    assert status == 400
    assert body == {"error": "delay_ms must be a whole number from 0 to 60000, got '-5'."}


@pytest.mark.parametrize("name", L03)
def test_l03_upstream_error_is_a_502(asgi_default, upstream, name):
    status, body = asgi_default.get(f"/l03/{name}?delay_ms=0")
    assert status == 502
    assert body == {"error": f"The upstream at {upstream}/missing/data answered HTTP 404."}


@pytest.mark.parametrize("name", L03)
def test_l03_without_upstream_url_is_a_503(plain, name):
    status, body = plain.get(f"/l03/{name}")
    assert status == 503
    assert body["error"].startswith("LAB_UPSTREAM_URL is not set")


# Lesson 2 ###############################################################################


def test_l02(plain):
    assert plain.get("/l02/sleep?ms=0") == (200, {"slept_ms": 0})
    assert plain.get("/l02/sleep?ms=5") == (200, {"slept_ms": 5})
    assert plain.get("/l02/cpu?ms=0") == (200, {"cpu_ms": 0})
    assert plain.get("/l02/cpu?ms=5") == (200, {"cpu_ms": 5})
    status, body = plain.get("/l02/pid")
    assert status == 200 and list(body) == ["pid"] and body["pid"] > 1
    assert plain.get("/l02/pid") == (200, body)  # one worker: the same process


BAD_MS = ["-1", "abc", "1.5", "", " 5", "٣", "99999999999"]


@pytest.mark.parametrize(
    ("path", "maximum", "raw"),
    [("/l02/sleep", 60000, raw) for raw in [*BAD_MS, "60001"]]
    + [("/l02/cpu", 1000, raw) for raw in [*BAD_MS, "1001"]],
)
def test_l02_bad_ms(plain, path, maximum, raw):
    status, body = plain.get(f"{path}?{urlencode({'ms': raw})}")
    assert status == 400
    assert body == {"error": f"ms must be a whole number from 0 to {maximum}, got {raw!r}."}


@pytest.mark.parametrize(("path", "maximum"), [("/l02/sleep", 60000), ("/l02/cpu", 1000)])
def test_l02_missing_ms(plain, path, maximum):
    assert plain.get(path) == (
        400, {"error": f"ms is missing: give a whole number from 0 to {maximum}, e.g. ?ms=100."}
    )
