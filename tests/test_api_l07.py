"""
Lesson 7's endpoints (caching: ``cache_page``, manual ``cache.get``/``cache.set``,
``delete_pattern``, the stampede and its lock, ``/l07/stampede-page``: the guide's
``@cache_page`` around the stampede's slow recompute), against real servers started by
the lab on its PostgreSQL and Valkey (its cache settings are tests/test_settings.py).

Functional only: a handful of requests per check, no load. The stampede tests send 8
requests at once, once each. Cache keys are unique per test run (the lab's Valkey keeps
its data between runs); timings are asserted only where PostgreSQL guarantees them
(``pg_sleep``), with generous bounds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import headers, unique
from lessons.probes import get, post, together
from lessons.profile import Profile


def test_cache_page_stampede_recomputes_once_per_simultaneous_miss(redis_asgi):
    url, key = redis_asgi.url, unique()
    path = f"/l07/stampede-page?key={key}&ms=200"
    assert post(url, "/l07/recomputes/reset").json() == {"recomputes": 0}
    replies = together(url, [path] * 8)
    assert [r.status for r in replies] == [200] * 8
    assert all(headers(r).get("age") is None for r in replies)  # none of them came from the cache
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
    assert headers(again).get("age") is not None
    assert get(url, "/l07/recomputes").json()["recomputes"] == 8
    # Another URL is another page.
    assert get(url, f"/l07/stampede-page?key={key}&ms=0").status == 200
    assert get(url, "/l07/recomputes").json()["recomputes"] == 9


def test_cache_page_stampede_refusals_are_not_cached(redis_asgi):
    for _ in range(2):
        reply = get(redis_asgi.url, "/l07/stampede-page?key=a*b")
        assert (reply.status, reply.json()) == (
            400, {"error": "key must be 1 to 64 letters, digits, '.', '_' or '-', got 'a*b'."})
        assert headers(reply).get("age") is None


def test_stampede_page_needs_a_cache(lab):
    with lab.serve(Profile(server="gunicorn-sync", cache="none", middleware="none")) as srv:
        reply = get(srv.url, f"/l07/stampede-page?key={unique()}&ms=0")
    assert reply.status == 501


@pytest.mark.parametrize("path", ["/l07/manual", "/l07/manual-async"])
def test_manual_views_name_the_worker_that_answered(redis_asgi, path):
    key = unique()
    replies = [get(redis_asgi.url, f"{path}?key={key}") for _ in range(3)]
    workers = {headers(r).get("x-worker") for r in replies}
    assert len(workers) == 1  # one uvicorn worker
    (pid,) = workers
    assert pid is not None and pid.isdigit()
    assert [headers(r).get("x-cache") for r in replies] == ["miss", "hit", "hit"]


def test_cached_bodies_are_the_expensive_body(redis_asgi, locmem_wsgi):
    expensive = get(redis_asgi.url, "/l07/expensive")
    assert expensive.status == 200
    assert headers(expensive)["content-type"] == "application/json"
    stats = expensive.json()
    assert [row["status"] for row in stats] == ["cancelled", "paid", "pending", "shipped"]
    assert sum(row["orders"] for row in stats) == 20_000
    for url in (redis_asgi.url, locmem_wsgi.url):
        for path in ("/l07/expensive", "/l07/cached-page", "/l07/cached-page-async",
                     f"/l07/manual?key={unique()}", f"/l07/manual-async?key={unique()}"):
            for _ in range(2):  # a miss, then (where cached) a hit
                assert get(url, path).body == expensive.body, (url, path)


@pytest.mark.parametrize("path", ["/l07/manual", "/l07/manual-async"])
def test_manual_caching_misses_then_hits(redis_asgi, path):
    key = unique()
    marks = [headers(get(redis_asgi.url, f"{path}?key={key}"))["x-cache"] for _ in range(3)]
    assert marks == ["miss", "hit", "hit"]
    # The sync and async views share the key.
    other = "/l07/manual" if path.endswith("async") else "/l07/manual-async"
    assert headers(get(redis_asgi.url, f"{other}?key={key}"))["x-cache"] == "hit"


def keys(url: str, pattern: str) -> list[str]:
    reply = get(url, f"/l07/keys?pattern={pattern}")
    assert reply.status == 200, reply.body
    return reply.json()["keys"]


def test_invalidation_deletes_exactly_the_items_keys(redis_asgi):
    url = redis_asgi.url
    assert post(url, "/l07/invalidate").status == 200  # a clean slate
    assert keys(url, "items:*") == []
    a, b, other = unique(), unique(), unique()
    for key in (a, b):
        assert headers(get(url, f"/l07/manual?key={key}"))["x-cache"] == "miss"
    assert get(url, f"/l07/stampede?key={other}&ms=0").status == 200
    assert keys(url, "items:*") == sorted([f":1:items:{a}", f":1:items:{b}"])
    reply = post(url, "/l07/invalidate")
    assert (reply.status, reply.json()) == (200, {"deleted": 2})
    assert keys(url, "items:*") == []
    assert keys(url, f"stampede:{other}") == [f":1:stampede:{other}"]
    assert headers(get(url, f"/l07/manual?key={a}"))["x-cache"] == "miss"


def test_pattern_operations_need_django_redis(locmem_wsgi):
    message = ("delete_pattern and key listing need django-redis (LAB_CACHE=django-redis); "
               "Django's own cache backends have no pattern operations.")
    for reply in (post(locmem_wsgi.url, "/l07/invalidate"), get(locmem_wsgi.url, "/l07/keys")):
        assert (reply.status, reply.json()) == (501, {"error": message})


@pytest.mark.parametrize(("path", "recomputes"),
                         [("/l07/stampede", 8), ("/l07/stampede-locked", 1)])
def test_stampede(redis_asgi, path, recomputes):
    url, key = redis_asgi.url, unique()
    assert post(url, "/l07/recomputes/reset").json() == {"recomputes": 0}
    replies = together(url, [f"{path}?key={key}&ms=200"] * 8)
    assert [r.status for r in replies] == [200] * 8
    bodies = [r.json() for r in replies]
    assert sum(body["recomputed"] for body in bodies) == recomputes
    assert len({json.dumps(body["stats"]) for body in bodies}) == 1
    assert get(url, "/l07/recomputes").json() == {
        "recomputes": recomputes, "shared_by_workers": True,
    }  # fmt: skip
    # Everybody waited for the one slow recompute.
    assert all(r.seconds >= 0.18 for r in replies)
    # Now cached: no more recomputes.
    assert get(url, f"{path}?key={key}&ms=200").json()["recomputed"] is False
    assert get(url, "/l07/recomputes").json()["recomputes"] == recomputes


def test_stampede_bad_key(redis_asgi):
    reply = get(redis_asgi.url, "/l07/stampede?key=a*b")
    assert (reply.status, reply.json()) == (
        400, {"error": "key must be 1 to 64 letters, digits, '.', '_' or '-', got 'a*b'."}
    )


def test_recomputes_are_per_process_with_locmem(locmem_wsgi):
    assert post(locmem_wsgi.url, "/l07/recomputes/reset").status == 200
    assert get(locmem_wsgi.url, f"/l07/stampede-locked?key={unique()}&ms=0").json()["recomputed"]
    assert get(locmem_wsgi.url, "/l07/recomputes").json() == {
        "recomputes": 1, "shared_by_workers": False,
    }  # fmt: skip


DELAY_MS = 20


@pytest.fixture(scope="module")
def slow_redis(lab) -> Iterator[Any]:
    """Django's own RedisCache, the pure-Python parser, a simulated 20 ms round trip."""
    knobs = (("LAB_REDIS_PARSER", "python"), ("LAB_CACHE_DELAY_MS", str(DELAY_MS)))
    profile = Profile(server="uvicorn", cache="redis", middleware="none", extra_env=knobs)
    with lab.serve(profile) as srv:
        yield srv


def test_cache_delay_is_paid_per_cache_call(slow_redis):
    url, key = slow_redis.url, unique()
    assert [headers(get(url, f"/l07/manual?key={key}"))["x-cache"] for _ in range(2)] == [
        "miss", "hit"]
    hit = get(url, f"/l07/manual?key={key}")
    assert hit.seconds >= DELAY_MS / 1000  # one GET
    get(url, "/l07/cached-page-async")
    hit = get(url, "/l07/cached-page-async")
    assert hit.status == 200
    assert hit.seconds >= 2 * DELAY_MS / 1000  # the header list, then the page


def test_stampede_lock_without_django_redis_is_cache_add(slow_redis):
    url, key = slow_redis.url, unique()
    assert post(url, "/l07/recomputes/reset").status == 200
    replies = together(url, [f"/l07/stampede-locked?key={key}&ms=200"] * 4)
    assert sum(r.json()["recomputed"] for r in replies) == 1
    assert get(url, "/l07/recomputes").json()["recomputes"] == 1
    assert post(url, "/l07/invalidate").status == 501
