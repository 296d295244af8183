"""
Lesson 7's newer endpoints against a real server (uvicorn, django-redis, on the lab's
PostgreSQL and Valkey): ``/l07/stampede-page`` (the guide's ``@cache_page`` around the
stampede's slow recompute) and the ``X-Worker`` header of the manual-caching views.
The older lesson-7 endpoints are tested in test_lab_l07_l09.py.

Functional only: a handful of requests; 8 at once for the stampede, once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lessons.probes import Reply, get, post
from lessons.profile import Profile


def unique() -> str:
    return uuid.uuid4().hex[:12]


def header(reply: Reply, name: str) -> str | None:
    return {k.lower(): v for k, v in reply.headers.items()}.get(name.lower())


def at_once(n: int, path: str, url: str) -> list[Reply]:
    barrier = threading.Barrier(n)
    replies: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        replies[i] = get(url, path)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return replies


@pytest.fixture(scope="module")
def asgi(lab) -> Iterator[Any]:
    with lab.serve(Profile(server="uvicorn", cache="django-redis", middleware="none")) as srv:
        yield srv


def test_cache_page_stampede_recomputes_once_per_simultaneous_miss(asgi):
    url, key = asgi.url, unique()
    path = f"/l07/stampede-page?key={key}&ms=200"
    assert post(url, "/l07/recomputes/reset").json() == {"recomputes": 0}
    replies = at_once(8, path, url)
    assert [r.status for r in replies] == [200] * 8
    assert all(header(r, "Age") is None for r in replies)  # none of them came from the cache
    bodies = {r.body for r in replies}
    assert len(bodies) == 1
    body = replies[0].json()
    assert body["key"] == key and set(body) == {"key", "stats"}
    assert [row["status"] for row in body["stats"]] == ["cancelled", "paid", "pending", "shipped"]
    assert get(url, "/l07/recomputes").json()["recomputes"] == 8
    assert all(r.seconds >= 0.18 for r in replies)  # everybody paid the recompute
    # Now the page is cached (keyed by the URL): served with an Age header, no recompute.
    again = get(url, path)
    assert (again.status, again.body) == (200, replies[0].body)
    assert header(again, "Age") is not None
    assert get(url, "/l07/recomputes").json()["recomputes"] == 8
    # Another URL is another page.
    assert get(url, f"/l07/stampede-page?key={key}&ms=0").status == 200
    assert get(url, "/l07/recomputes").json()["recomputes"] == 9


def test_cache_page_stampede_refusals_are_not_cached(asgi):
    for _ in range(2):
        reply = get(asgi.url, "/l07/stampede-page?key=a*b")
        assert (reply.status, reply.json()) == (
            400, {"error": "key must be 1 to 64 letters, digits, '.', '_' or '-', got 'a*b'."})
        assert header(reply, "Age") is None


def test_stampede_page_needs_a_cache(lab):
    with lab.serve(Profile(server="gunicorn-sync", cache="none", middleware="none")) as srv:
        reply = get(srv.url, f"/l07/stampede-page?key={unique()}&ms=0")
    assert reply.status == 501


@pytest.mark.parametrize("path", ["/l07/manual", "/l07/manual-async"])
def test_manual_views_name_the_worker_that_answered(asgi, path):
    key = unique()
    replies = [get(asgi.url, f"{path}?key={key}") for _ in range(3)]
    workers = {header(r, "X-Worker") for r in replies}
    assert len(workers) == 1  # one uvicorn worker
    (pid,) = workers
    assert pid is not None and pid.isdigit()
    assert [header(r, "X-Cache") for r in replies] == ["miss", "hit", "hit"]
