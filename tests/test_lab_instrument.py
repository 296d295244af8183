"""
Tests for the lab's counters (LAB_INSTRUMENT=1) against real servers on a small SQLite
database.  Lesson 2's and lesson 3's endpoints (and the upstream stand-in) are tested in
test_api_l02.py and test_api_l03.py.

Every process goes through lessons.procs (LabServer uses it too), so none outlives a
crashed test. Counts are exact integers per request (``helpers.Client.per_request``):
each case sends N requests one after another on one keep-alive connection, twice, and
asserts that each delta is a multiple of N and that both rounds agree. No assertion
depends on wall-clock time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import COUNTER_NAMES, COUNTERS, Client
from lessons.profile import Profile
from lessons.server import LabServer

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab_project"


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


def serve(tmp: pytest.TempPathFactory, server: str, database: str, middleware: str = "none",
          **env: str) -> Iterator[Client]:
    """The lab project under ``server``, with no LAB_* variable from this environment:
    one keep-alive connection to it while the fixture that yields from this lives."""
    profile = Profile(server=server, middleware=middleware, database="sqlite")
    base = {"LAB_DATABASE_URL": database, "LAB_SECRET_KEY": "instrument-tests",
            "LAB_INSTRUMENT": "0", "LAB_UPSTREAM_URL": ""}
    srv = LabServer(profile, env=base | env, home=tmp.mktemp(f"{server}-{middleware}"))
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("LAB_"):
                mp.delenv(name)
        srv.start()  # reads os.environ here, once
    client = Client(srv.url)
    try:
        yield client
    finally:
        client.close()
        srv.stop()


@pytest.fixture(scope="module")
def wsgi(tmp_path_factory, database) -> Iterator[Client]:
    yield from serve(tmp_path_factory, "gunicorn-sync", database, "default", LAB_INSTRUMENT="1")


@pytest.fixture(scope="module")
def asgi_none(tmp_path_factory, database) -> Iterator[Client]:
    yield from serve(tmp_path_factory, "uvicorn", database, "none", LAB_INSTRUMENT="1")


@pytest.fixture(scope="module")
def asgi_default(tmp_path_factory, database) -> Iterator[Client]:
    yield from serve(tmp_path_factory, "uvicorn", database, "default", LAB_INSTRUMENT="1")


@pytest.fixture(scope="module")
def plain(tmp_path_factory, database) -> Iterator[Client]:
    """LAB_INSTRUMENT=0: the project as the other lessons run it."""
    yield from serve(tmp_path_factory, "uvicorn", database, "none")


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
    assert set(first) == {*COUNTER_NAMES, "pid"}


def test_counters_are_a_django_404_when_off(plain):
    status, body = plain.get(COUNTERS)
    assert status == 404
    assert b"<title>Not Found</title>" in body
