"""
Tests for lessons 7 to 9 of the lab project (caching, database connections, streaming),
against real servers started by the lab on its PostgreSQL and Valkey.

Functional only: a handful of requests per check, no load. The stampede tests send 8
requests at once, once each. Cache keys are unique per test run (the lab's Valkey keeps
its data between runs); timings are asserted only where PostgreSQL guarantees them
(``pg_sleep``, ``statement_timeout``, the pool's timeout), with generous bounds.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lessons.probes import Reply, get, post
from lessons.profile import Profile
from lessons.services import free_port

STATEMENT_TIMEOUT_MS = 500
SYNC_WARNING = (
    "StreamingHttpResponse must consume synchronous iterators in order to serve them "
    "asynchronously. Use an asynchronous iterator instead."
)
ASYNC_WARNING = (
    "StreamingHttpResponse must consume asynchronous iterators in order to serve them "
    "synchronously. Use a synchronous iterator instead."
)


def unique() -> str:
    return uuid.uuid4().hex[:12]


def headers(reply: Reply) -> dict[str, str]:
    """The reply's headers with lower-case names (servers differ in case)."""
    return {name.lower(): value for name, value in reply.headers.items()}


def at_once(n: int, call: Callable[[], Reply]) -> list[Reply]:
    """``n`` calls started together (a barrier), their replies in start order."""
    barrier = threading.Barrier(n)
    replies: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        replies[i] = call()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return replies


# Servers (one of each per module) #######################################################


@pytest.fixture(scope="module")
def asgi(lab) -> Iterator[Any]:
    """uvicorn, django-redis, no middleware, a statement timeout."""
    profile = Profile(server="uvicorn", cache="django-redis", middleware="none",
                      statement_timeout_ms=STATEMENT_TIMEOUT_MS)
    with lab.serve(profile) as srv:
        yield srv


@pytest.fixture(scope="module")
def wsgi(lab) -> Iterator[Any]:
    """gunicorn (sync), LocMem, the default middleware (CSRF included)."""
    with lab.serve(Profile(server="gunicorn-sync", cache="locmem")) as srv:
        yield srv


# Lesson 7: caching ######################################################################


def test_cached_bodies_are_the_expensive_body(asgi, wsgi):
    expensive = get(asgi.url, "/l07/expensive")
    assert expensive.status == 200
    assert headers(expensive)["content-type"] == "application/json"
    stats = expensive.json()
    assert [row["status"] for row in stats] == ["cancelled", "paid", "pending", "shipped"]
    assert sum(row["orders"] for row in stats) == 20_000
    for url in (asgi.url, wsgi.url):
        for path in ("/l07/expensive", "/l07/cached-page", "/l07/cached-page-async",
                     f"/l07/manual?key={unique()}", f"/l07/manual-async?key={unique()}"):
            for _ in range(2):  # a miss, then (where cached) a hit
                assert get(url, path).body == expensive.body, (url, path)


@pytest.mark.parametrize("path", ["/l07/manual", "/l07/manual-async"])
def test_manual_caching_misses_then_hits(asgi, path):
    key = unique()
    marks = [headers(get(asgi.url, f"{path}?key={key}"))["x-cache"] for _ in range(3)]
    assert marks == ["miss", "hit", "hit"]
    # The sync and async views share the key.
    other = "/l07/manual" if path.endswith("async") else "/l07/manual-async"
    assert headers(get(asgi.url, f"{other}?key={key}"))["x-cache"] == "hit"


def keys(url: str, pattern: str) -> list[str]:
    reply = get(url, f"/l07/keys?pattern={pattern}")
    assert reply.status == 200, reply.body
    return reply.json()["keys"]


def test_invalidation_deletes_exactly_the_items_keys(asgi):
    url = asgi.url
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


def test_pattern_operations_need_django_redis(wsgi):
    message = ("delete_pattern and key listing need django-redis (LAB_CACHE=django-redis); "
               "Django's own cache backends have no pattern operations.")
    for reply in (post(wsgi.url, "/l07/invalidate"), get(wsgi.url, "/l07/keys")):
        assert (reply.status, reply.json()) == (501, {"error": message})


@pytest.mark.parametrize(("path", "recomputes"),
                         [("/l07/stampede", 8), ("/l07/stampede-locked", 1)])
def test_stampede(asgi, path, recomputes):
    url, key = asgi.url, unique()
    assert post(url, "/l07/recomputes/reset").json() == {"recomputes": 0}
    replies = at_once(8, lambda: get(url, f"{path}?key={key}&ms=200"))
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


def test_stampede_bad_key(asgi):
    reply = get(asgi.url, "/l07/stampede?key=a*b")
    assert (reply.status, reply.json()) == (
        400, {"error": "key must be 1 to 64 letters, digits, '.', '_' or '-', got 'a*b'."}
    )


def test_recomputes_are_per_process_with_locmem(wsgi):
    assert post(wsgi.url, "/l07/recomputes/reset").status == 200
    assert get(wsgi.url, f"/l07/stampede-locked?key={unique()}&ms=0").json()["recomputed"]
    assert get(wsgi.url, "/l07/recomputes").json() == {
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
    replies = at_once(4, lambda: get(url, f"/l07/stampede-locked?key={key}&ms=200"))
    assert sum(r.json()["recomputed"] for r in replies) == 1
    assert get(url, "/l07/recomputes").json()["recomputes"] == 1
    assert post(url, "/l07/invalidate").status == 501


# Settings ###############################################################################

REDIS = "redis://127.0.0.1:6390/0"


@pytest.mark.parametrize(("parser", "path"), [
    ("python", "redis.connection._RESP3Parser"),
    ("hiredis", "redis.connection._HiredisParser"),
])  # fmt: skip
def test_redis_parser_setting(load_settings, parser, path):
    s = load_settings(LAB_CACHE="django-redis", LAB_REDIS_URL=REDIS, LAB_REDIS_PARSER=parser)
    assert s["CACHES"]["default"]["OPTIONS"]["PARSER_CLASS"] == path
    s = load_settings(LAB_CACHE="redis", LAB_REDIS_URL=REDIS, LAB_REDIS_PARSER=parser)
    assert s["CACHES"]["default"]["OPTIONS"] == {"parser_class": path}
    auto = load_settings(LAB_CACHE="redis", LAB_REDIS_URL=REDIS, LAB_REDIS_PARSER="auto")
    assert "OPTIONS" not in auto["CACHES"]["default"]


def test_cache_delay_setting(load_settings):
    s = load_settings(LAB_CACHE="django-redis", LAB_REDIS_URL=REDIS, LAB_CACHE_DELAY_MS="0.5")
    cache = s["CACHES"]["default"]
    assert (cache["BACKEND"], cache["LAB_DELAY_MS"]) == (
        "lab.slow_cache.DelayedDjangoRedisCache", 0.5)
    s = load_settings(LAB_CACHE="redis", LAB_REDIS_URL=REDIS, LAB_CACHE_DELAY_MS="20")
    assert s["CACHES"]["default"]["BACKEND"] == "lab.slow_cache.DelayedRedisCache"
    s = load_settings(LAB_CACHE="redis", LAB_REDIS_URL=REDIS, LAB_CACHE_DELAY_MS="0")
    assert s["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


@pytest.mark.parametrize(("env", "message"), [
    ({"LAB_CACHE": "redis", "LAB_REDIS_PARSER": "c"},
     "LAB_REDIS_PARSER='c' is invalid; allowed values: auto, python, hiredis."),
    ({"LAB_CACHE": "locmem", "LAB_REDIS_PARSER": "python"},
     "LAB_REDIS_PARSER='python' is invalid (it needs LAB_CACHE=django-redis or redis); "
     "allowed values: auto."),
    ({"LAB_CACHE": "redis", "LAB_CACHE_DELAY_MS": "-1"},
     "LAB_CACHE_DELAY_MS='-1' is invalid; allowed values: a number of milliseconds >= 0, "
     "e.g. 1 or 0.5."),
    ({"LAB_CACHE_DELAY_MS": "5"},
     "LAB_CACHE_DELAY_MS='5' is invalid (it needs LAB_CACHE=django-redis or redis); "
     "allowed values: 0."),
])  # fmt: skip
def test_bad_cache_knobs(load_settings, env, message):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured) as info:
        load_settings(LAB_REDIS_URL=REDIS, **env)
    assert str(info.value) == message


def test_statement_timeout_is_a_setting(load_settings):
    pg = "postgresql://lab@127.0.0.1:5432/lab"
    assert load_settings(LAB_DATABASE_URL=pg, LAB_STATEMENT_TIMEOUT_MS="250")[
        "LAB_STATEMENT_TIMEOUT_MS"] == 250
    assert load_settings()["LAB_STATEMENT_TIMEOUT_MS"] == 0


# Lesson 8: database connections #########################################################


@pytest.mark.parametrize("path", ["/l08/one-query", "/l08/one-query-async"])
def test_one_query(asgi, wsgi, path):
    for url in (asgi.url, wsgi.url):
        reply = get(url, path)
        assert (reply.status, reply.body) == (200, b'{"ok": true}')


def test_statement_timeout_is_a_504_sentence(asgi):
    reply = get(asgi.url, "/l08/slow?ms=50")
    assert (reply.status, reply.json()) == (200, {"ms": 50})
    reply = get(asgi.url, f"/l08/slow?ms={STATEMENT_TIMEOUT_MS * 4}")
    assert (reply.status, reply.json()) == (504, {
        "error": "The database cancelled the query after the statement timeout "
                 f"({STATEMENT_TIMEOUT_MS} ms)."
    })  # fmt: skip
    assert 0.9 * STATEMENT_TIMEOUT_MS / 1000 <= reply.seconds < 3 * STATEMENT_TIMEOUT_MS / 1000
    # The connection survives the cancellation.
    assert get(asgi.url, "/l08/one-query").status == 200


def test_pool_of_one_makes_the_second_request_wait_then_time_out(lab):
    profile = Profile(server="uvicorn", middleware="none", db_pool=True, db_pool_size=1,
                      extra_env=(("LAB_DB_POOL_TIMEOUT", "1"),))
    with lab.serve(profile) as srv:
        waits = sorted(r.json()["waited_ms"]
                       for r in at_once(2, lambda: get(srv.url, "/l08/pool-wait?ms=300")))
        assert waits[0] < 100 and 250 <= waits[1] < 1000, waits
        replies = at_once(2, lambda: get(srv.url, "/l08/slow?ms=2000"))
        assert sorted(r.status for r in replies) == [200, 503]
        refused = next(r for r in replies if r.status == 503)
        assert refused.json() == {
            "error": "No database connection became free within the pool's timeout "
                     "(1 s; pool size 1)."
        }  # fmt: skip
        stats = get(srv.url, "/l08/pool-stats").json()
        assert (stats["min_size"], stats["max_size"], stats["timeout"]) == (1, 1, 1.0)
        assert stats["requests_errors"] == 1


def test_unreachable_database_is_a_503_sentence(lab):
    url = f"postgresql://lab@127.0.0.1:{free_port()}/lab"
    profile = Profile(server="uvicorn", middleware="none")
    with lab.serve(profile, env={"LAB_DATABASE_URL": url}) as srv:
        for path in ("/l08/one-query", "/l08/one-query-async"):
            reply = get(srv.url, path)
            assert reply.status == 503
            error = reply.json()["error"]
            assert error.startswith("The database is unreachable: connection failed: ")
            assert "Connection refused" in error and "\n" not in error


# Lesson 9: streaming ####################################################################

STREAMS = ("/l09/json", "/l09/stream-sync", "/l09/stream-async")


@pytest.mark.parametrize("n", [10, 20_000])
def test_three_ways_give_the_same_json(asgi, wsgi, n):
    bodies = set()
    for url in (asgi.url, wsgi.url):
        for path in STREAMS:
            reply = get(url, f"{path}?n={n}")
            assert reply.status == 200, (url, path)
            assert headers(reply)["content-type"] == "application/json"
            bodies.add(reply.body)
    assert len(bodies) == 1
    items = json.loads(bodies.pop())
    assert [item["id"] for item in items] == list(range(1, n + 1))
    assert list(items[0]) == ["id", "name"]
    if n > 10_000:  # the second pass repeats the items, ids shifted
        assert items[10_000 + 6]["name"] == items[6]["name"]


def test_streams_have_no_content_length(wsgi):
    # CommonMiddleware (the default stack) sets Content-Length, where the length is known.
    whole = get(wsgi.url, "/l09/json?n=5")
    assert headers(whole)["content-length"] == str(len(whole.body))
    for path in STREAMS[1:]:
        got = headers(get(wsgi.url, f"{path}?n=5"))
        assert "content-length" not in got and got["transfer-encoding"] == "chunked"


def test_bad_n(asgi):
    for path in STREAMS:
        reply = get(asgi.url, f"{path}?n=100001")
        assert (reply.status, reply.json()) == (
            400, {"error": "n must be a whole number from 1 to 100000, got '100001'."}
        )


def test_sync_iterator_under_asgi_and_async_under_wsgi_warn(asgi, wsgi):
    assert get(asgi.url, "/l09/stream-sync?n=3").status == 200
    assert get(wsgi.url, "/l09/stream-async?n=3").status == 200
    assert SYNC_WARNING in asgi.logs(200)
    assert ASYNC_WARNING in wsgi.logs(200)
    assert ASYNC_WARNING not in asgi.logs(200) and SYNC_WARNING not in wsgi.logs(200)
