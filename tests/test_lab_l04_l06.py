"""
Tests for lessons 4 to 6 of the lab project (async ORM, middleware, Ninja vs DRF vs raw
Django), against real servers started by the lab on its PostgreSQL (and one on its
SQLite database, where a test says so).

Functional only: a handful of sequential requests per check, no load. Counts are exact
integers from the counters (``Profile(instrument=True)``); the only timings asserted are
lower bounds PostgreSQL guarantees (``pg_sleep``) and generous upper bounds for work that
runs in parallel.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from lessons.counters import per_request, read
from lessons.profile import Profile

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab_project"
FRAMEWORKS = ("raw", "raw-orjson", "ninja", "ninja-orjson", "drf")
LIMITS = (1, 10, 100, 1000)
# Headers the HTTP server adds itself, whatever the Django stack does.
SERVER_HEADERS = {"date", "server", "connection", "transfer-encoding"}
SERVER_TIMING = "lab.middleware.ServerTimingMiddleware"
GUIDE_TIMING = "lab.middleware.GuideTimingMiddleware"


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def django_headers(self) -> set[str]:
        return set(self.headers) - SERVER_HEADERS


def fetch(url: str, path: str, method: str = "GET", headers: dict[str, str] | None = None,
          body: str | None = None) -> Response:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Response(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


def counts(url: str, path: str, n: int = 5, loose: tuple[str, ...] = ()) -> dict[str, Any]:
    """Exact counts per request of ``path``, after one warm-up request; the counters
    named in ``loose`` may vary from request to request."""
    assert fetch(url, path).status == 200
    result = per_request(url, path, n)
    assert result["requests"] == n
    exact = {name: value for name, value in result.items() if name not in loose}
    assert all(isinstance(v, int) for v in exact.values()), (path, result)
    return result


# Servers (one of each per module) #######################################################


@pytest.fixture(scope="module")
def asgi(lab) -> Iterator[str]:
    """uvicorn, no middleware, counters on: the reference server."""
    with lab.serve(Profile(server="uvicorn", middleware="none", instrument=True)) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def wsgi(lab) -> Iterator[str]:
    """gunicorn (sync workers) with the default middleware."""
    with lab.serve(Profile(server="gunicorn-sync", middleware="default", instrument=True)) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def minimal_sqlite(lab) -> Iterator[str]:
    """uvicorn with the guide's minimal middleware, on the lab's SQLite database."""
    with lab.serve(Profile(server="uvicorn", middleware="minimal", database="sqlite")) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def server_timing(lab) -> Iterator[str]:
    with lab.serve(Profile(server="uvicorn", middleware=SERVER_TIMING, instrument=True)) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def guide_timing(lab) -> Iterator[str]:
    with lab.serve(Profile(server="uvicorn", middleware=GUIDE_TIMING, instrument=True)) as srv:
        yield srv.url


# Lesson 4: async ORM ####################################################################


@pytest.mark.parametrize("mode", ["gather", "sequential"])
def test_thread_sensitive_queries_run_one_after_the_other(asgi, mode):
    n, ms = 3, 100
    response = fetch(asgi, f"/l04/queries?n={n}&ms={ms}&mode={mode}")
    assert response.status == 200
    body = response.json()
    assert {k: body[k] for k in ("mode", "n", "ms", "threads", "connections")} == {
        "mode": mode, "n": n, "ms": ms, "threads": 1, "connections": 1,
    }  # fmt: skip
    assert body["elapsed_ms"] >= 0.9 * n * ms


@pytest.mark.measures  # an upper bound on elapsed time: 3 x 100 ms sleeps overlap
def test_thread_insensitive_queries_run_in_parallel_on_n_connections(asgi):
    n, ms = 3, 100
    body = fetch(asgi, f"/l04/queries?n={n}&ms={ms}&mode=threads").json()
    assert (body["threads"], body["connections"]) == (n, n)
    assert ms * 0.9 <= body["elapsed_ms"] < 0.9 * n * ms


@pytest.mark.parametrize("mode", ["gather", "sequential", "threads"])
def test_every_mode_is_one_hop_and_one_query_per_query(asgi, mode):
    base = counts(asgi, "/l01/hello-async")
    # The default executor starts its threads lazily, as a burst finds none idle.
    loose = ("threads_started",) if mode == "threads" else ()
    got = counts(asgi, f"/l04/queries?n=3&ms=0&mode={mode}", loose=loose)
    assert got["queries"] == 3
    assert got["sync_to_async"] == base["sync_to_async"] + 3
    assert got["async_to_sync"] == 0


@pytest.mark.measures  # an upper bound on elapsed time: the two 200 ms waits overlap
def test_orm_query_and_asyncio_sleep_overlap(asgi):
    ms = 200
    body = fetch(asgi, f"/l04/overlap?ms={ms}").json()
    assert body["ms"] == ms
    assert 0.9 * ms <= body["elapsed_ms"] < 1.8 * ms


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("n=0", "n must be a whole number from 1 to 10, got '0'."),
        ("n=11", "n must be a whole number from 1 to 10, got '11'."),
        ("ms=2001", "ms must be a whole number from 0 to 2000, got '2001'."),
        ("ms=-1", "ms must be a whole number from 0 to 2000, got '-1'."),
        ("mode=parallel", "mode must be one of gather, sequential, threads, got 'parallel'."),
    ],
)
def test_queries_bad_parameters(asgi, query, message):
    response = fetch(asgi, f"/l04/queries?{query}")
    assert (response.status, response.json()) == (400, {"error": message})


@pytest.mark.parametrize("path", ["/l04/queries", "/l04/overlap"])
def test_pg_sleep_endpoints_need_postgresql(minimal_sqlite, path):
    response = fetch(minimal_sqlite, path)
    assert response.status == 501
    assert response.json() == {
        "error": "This endpoint runs pg_sleep() and needs PostgreSQL, but LAB_DATABASE_URL "
                 "points to sqlite."
    }  # fmt: skip


DASHBOARDS = ["/l04/dashboard-gather", "/l04/dashboard-one-query", "/l04/dashboard-one-query-sync"]


def test_dashboards_are_byte_identical(asgi, wsgi, minimal_sqlite):
    bodies = {fetch(url, path).body for url in (asgi, wsgi, minimal_sqlite) for path in DASHBOARDS}
    assert len(bodies) == 1
    body = json.loads(bodies.pop())
    assert list(body) == ["customers", "pending", "revenue"]
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", body["revenue"])
    assert 0 < body["customers"] and 0 < body["pending"]


def test_dashboard_gather_is_three_queries_and_three_hops(asgi):
    base = counts(asgi, "/l01/hello-async")
    gather = counts(asgi, "/l04/dashboard-gather")
    one = counts(asgi, "/l04/dashboard-one-query")
    one_sync = counts(asgi, "/l04/dashboard-one-query-sync")
    assert (gather["queries"], one["queries"], one_sync["queries"]) == (3, 1, 1)
    assert gather["sync_to_async"] == base["sync_to_async"] + 3
    assert one["sync_to_async"] == base["sync_to_async"] + 1
    # A sync view under ASGI: one hop for the view, none for its query.
    assert one_sync["sync_to_async"] == base["sync_to_async"] + 1


@pytest.mark.parametrize(
    ("mode", "queries"), [("one", 1 + 50), ("peers", 2), ("select_related", 1)]
)
def test_fetch_modes_query_counts(asgi, mode, queries):
    assert counts(asgi, f"/l04/orders?mode={mode}")["queries"] == queries
    assert counts(asgi, f"/l04/orders?limit=7&mode={mode}")["queries"] == {
        "one": 8, "peers": 2, "select_related": 1,
    }[mode]  # fmt: skip


def test_fetch_modes_give_the_same_orders(asgi, wsgi):
    bodies = {fetch(url, f"/l04/orders?mode={mode}").body
              for url in (asgi, wsgi) for mode in ("one", "peers", "select_related")}
    assert len(bodies) == 1
    orders = json.loads(bodies.pop())
    assert [o["id"] for o in orders] == list(range(1, 51))
    assert list(orders[0]) == ["id", "customer", "amount"]


def test_fetch_mode_raise_is_a_409_with_djangos_message(asgi):
    before = read(asgi)
    response = fetch(asgi, "/l04/orders?mode=raise")
    after = read(asgi)
    assert (response.status, response.json()) == (
        409, {"error": "Fetching of Order.customer blocked."}
    )
    assert after["queries"] - before["queries"] == 1


def test_orders_bad_parameters(asgi):
    response = fetch(asgi, "/l04/orders?mode=lazy")
    assert (response.status, response.json()) == (
        400, {"error": "mode must be one of one, peers, raise, select_related, got 'lazy'."}
    )
    response = fetch(asgi, "/l04/orders?limit=0")
    assert (response.status, response.json()) == (
        400, {"error": "limit must be a whole number from 1 to 1000, got '0'."}
    )


# Lesson 5: middleware ###################################################################

SECURITY_HEADERS = {"x-content-type-options", "referrer-policy", "cross-origin-opener-policy"}


def test_headers_per_middleware_preset(asgi, wsgi, minimal_sqlite):
    default = fetch(wsgi, "/l01/hello")
    minimal = fetch(minimal_sqlite, "/l01/hello")
    none = fetch(asgi, "/l01/hello")
    # CommonMiddleware sets Content-Length; without it the servers send chunked bodies.
    assert default.django_headers == {"content-type", "content-length", "x-frame-options",
                                      *SECURITY_HEADERS}
    assert minimal.django_headers == {"content-type", "content-length", *SECURITY_HEADERS}
    assert none.django_headers == {"content-type"}
    assert none.headers["transfer-encoding"] == "chunked"
    assert default.headers["x-frame-options"] == "DENY"
    for response in (default, minimal):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cross-origin-opener-policy"] == "same-origin"
    assert default.body == minimal.body == none.body == b'{"message": "hello"}'


CROSS_SITE = {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}


def test_csrf(wsgi, minimal_sqlite, asgi):
    for headers in ({}, CROSS_SITE):
        assert fetch(wsgi, "/l05/echo", "POST", headers, "a=1").status == 403
        for url in (minimal_sqlite, asgi):
            response = fetch(url, "/l05/echo", "POST", headers, "a=1")
            assert (response.status, response.json()) == (200, {"ok": True, "method": "POST"})
    assert fetch(asgi, "/l05/echo").status == 405


def test_whoami(wsgi, minimal_sqlite):
    assert fetch(wsgi, "/l05/whoami").json() == {"user": "anonymous"}
    assert fetch(minimal_sqlite, "/l05/whoami").json() == {
        "user": None,
        "note": "request.user is not set: AuthenticationMiddleware is not installed.",
    }


def test_server_timing_middleware_adds_no_hop_under_asgi(asgi, server_timing):
    response = fetch(server_timing, "/l01/hello-async")
    assert re.fullmatch(r"app;dur=[0-9]+\.[0-9]{3}", response.headers["server-timing"])
    assert "server-timing" not in fetch(asgi, "/l01/hello-async").headers
    for path in ("/l01/hello-async", "/l01/hello"):
        assert counts(server_timing, path) == counts(asgi, path)


def test_guide_timing_middleware_adds_hops_under_asgi(asgi, guide_timing):
    response = fetch(guide_timing, "/l01/hello-async")
    assert re.fullmatch(r"[0-9]+\.[0-9]{3}", response.headers["x-request-duration"])
    base = counts(asgi, "/l01/hello-async")
    guide = counts(guide_timing, "/l01/hello-async")
    # Into a thread for the middleware, back onto the loop for the async view.
    assert guide["sync_to_async"] == base["sync_to_async"] + 1
    assert (base["async_to_sync"], guide["async_to_sync"]) == (0, 1)


# Lesson 6: Ninja vs DRF vs raw ##########################################################


@pytest.fixture(scope="module")
def bodies(asgi) -> dict[tuple[str, int], bytes]:
    result = {}
    for framework in FRAMEWORKS:
        for limit in LIMITS:
            response = fetch(asgi, f"/l06/{framework}/items?limit={limit}")
            assert response.status == 200, response.body
            assert response.headers["content-type"].split(";")[0] == "application/json"
            result[framework, limit] = response.body
    return result


@pytest.mark.parametrize("limit", LIMITS)
def test_five_frameworks_byte_identical(bodies, wsgi, limit):
    reference = bodies["raw", limit]
    for framework in FRAMEWORKS:
        assert bodies[framework, limit] == reference, framework
    # ... and the same under WSGI (with the default middleware).
    for framework in ("raw", "drf"):
        assert fetch(wsgi, f"/l06/{framework}/items?limit={limit}").body == reference
    items = json.loads(reference)
    assert len(items) == limit
    assert [item["id"] for item in items] == list(range(1, limit + 1))
    assert list(items[0]) == ["id", "name", "category", "price", "quantity"]
    assert all(re.fullmatch(r"[0-9]+\.[0-9]{2}", item["price"]) for item in items)
    assert reference.isascii() and b", " not in reference and b'": ' not in reference


def test_default_limit_is_10(asgi, bodies):
    for framework in FRAMEWORKS:
        assert fetch(asgi, f"/l06/{framework}/items").body == bodies["raw", 10]


@pytest.mark.parametrize("raw", ["0", "1001", "x", "-5"])
def test_bad_limit_is_the_same_400_everywhere(asgi, raw):
    expected = {"error": f"limit must be a whole number from 1 to 1000, got {raw!r}."}
    for framework in FRAMEWORKS:
        response = fetch(asgi, f"/l06/{framework}/items?limit={raw}")
        assert (response.status, response.json()) == (400, expected), framework


def test_one_query_per_request_and_drf_renders_in_its_own_hop(asgi):
    sync_view = counts(asgi, "/l01/hello")
    for framework in FRAMEWORKS:
        got = counts(asgi, f"/l06/{framework}/items")
        assert got["queries"] == 1
        # DRF's Response is a SimpleTemplateResponse: Django's ASGI handler renders it
        # with one more sync_to_async.
        extra = 1 if framework == "drf" else 0
        assert got["sync_to_async"] == sync_view["sync_to_async"] + extra, framework


SERIALIZE = """
import hashlib, json, sys
import django
django.setup()
from api import l06
out = {f"{f} {n}": hashlib.sha256(l06.SERIALIZERS[f](l06.fetch(f, n))).hexdigest()
       for f in l06.FRAMEWORKS for n in map(int, sys.argv[1:])}
print(json.dumps({"frameworks": list(l06.FRAMEWORKS), "hashes": out}))
"""


def test_in_process_serializers_give_the_http_bodies(lab, bodies):
    """SERIALIZERS, in a process of their own (this one must not configure Django)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DJANGO_"))}
    env |= {"DJANGO_SETTINGS_MODULE": "lab.settings", "LAB_MIDDLEWARE": "none",
            "LAB_DATABASE_URL": lab.services.database_url, "LAB_SECRET_KEY": "l06-tests"}
    done = subprocess.run(
        [sys.executable, "-c", SERIALIZE, *map(str, LIMITS)], cwd=LAB, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["frameworks"] == list(FRAMEWORKS)
    for framework in FRAMEWORKS:
        for limit in LIMITS:
            expected = hashlib.sha256(bodies[framework, limit]).hexdigest()
            assert result["hashes"][f"{framework} {limit}"] == expected, (framework, limit)
