"""
Lesson 4's endpoints (the async ORM: sleeping queries, dashboards, fetch modes), against
real servers started by the lab on its PostgreSQL (and one on its SQLite database, where
a test says so).

Functional only: a handful of sequential requests per check, no load. Counts are exact
integers from the counters (``Profile(instrument=True)``); the only timings asserted are
lower bounds PostgreSQL guarantees (``pg_sleep``) and generous upper bounds for work that
runs in parallel.
"""

from __future__ import annotations

import json
import re

import pytest

from helpers import counts, fetch
from lessons.counters import read


@pytest.mark.parametrize("mode", ["gather", "sequential"])
def test_thread_sensitive_queries_run_one_after_the_other(counted_asgi, mode):
    n, ms = 3, 100
    response = fetch(counted_asgi, f"/l04/queries?n={n}&ms={ms}&mode={mode}")
    assert response.status == 200
    body = response.json()
    assert {k: body[k] for k in ("mode", "n", "ms", "threads", "connections")} == {
        "mode": mode, "n": n, "ms": ms, "threads": 1, "connections": 1,
    }  # fmt: skip
    assert body["elapsed_ms"] >= 0.9 * n * ms


@pytest.mark.measures  # an upper bound on elapsed time: 3 x 100 ms sleeps overlap
def test_thread_insensitive_queries_run_in_parallel_on_n_connections(counted_asgi):
    n, ms = 3, 100
    body = fetch(counted_asgi, f"/l04/queries?n={n}&ms={ms}&mode=threads").json()
    assert (body["threads"], body["connections"]) == (n, n)
    assert ms * 0.9 <= body["elapsed_ms"] < 0.9 * n * ms


def test_db_connections_of_a_server_counts_what_it_holds_and_nothing_else(lab):
    # Notebook 04 counts the connections thread_sensitive=False leaves open: with a
    # server, only that server's own (from the OS); a client of the database beside it
    # (here a psycopg connection of the test's) does not count.
    import psycopg

    from lessons import Profile

    with lab.serve(Profile(server="uvicorn", middleware="none")) as srv:
        assert lab.db_connections(srv) == 0  # CONN_MAX_AGE=0: closed after each request
        fetch(srv.url, "/l04/queries?n=2&ms=0&mode=gather")
        assert lab.db_connections(srv) == 0
        with psycopg.connect(lab.services.database_url):
            everyone = lab.db_connections()
            fetch(srv.url, "/l04/queries?n=3&ms=50&mode=threads")
            assert lab.db_connections(srv) == 3  # one per executor thread, never closed
            assert lab.db_connections() == everyone + 3


def test_counting_a_servers_connections_needs_a_tcp_database_url():
    from lessons.lab import _connections_to

    with pytest.raises(ValueError, match="needs a TCP database URL"):
        _connections_to(None, "postgresql:///lab?host=/var/run/postgresql")


@pytest.mark.parametrize("mode", ["gather", "sequential", "threads"])
def test_every_mode_is_one_hop_and_one_query_per_query(counted_asgi, mode):
    base = counts(counted_asgi, "/l01/hello-async")
    # The default executor starts its threads lazily, as a burst finds none idle.
    loose = ("threads_started",) if mode == "threads" else ()
    got = counts(counted_asgi, f"/l04/queries?n=3&ms=0&mode={mode}", loose=loose)
    assert got["queries"] == 3
    assert got["sync_to_async"] == base["sync_to_async"] + 3
    assert got["async_to_sync"] == 0


@pytest.mark.measures  # an upper bound on elapsed time: the two 200 ms waits overlap
def test_orm_query_and_asyncio_sleep_overlap(counted_asgi):
    ms = 200
    body = fetch(counted_asgi, f"/l04/overlap?ms={ms}").json()
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
def test_queries_bad_parameters(counted_asgi, query, message):
    response = fetch(counted_asgi, f"/l04/queries?{query}")
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


def test_dashboards_are_byte_identical(counted_asgi, counted_wsgi, minimal_sqlite):
    bodies = {fetch(url, path).body
              for url in (counted_asgi, counted_wsgi, minimal_sqlite) for path in DASHBOARDS}
    assert len(bodies) == 1
    body = json.loads(bodies.pop())
    assert list(body) == ["customers", "pending", "revenue"]
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", body["revenue"])
    assert 0 < body["customers"] and 0 < body["pending"]


def test_dashboard_gather_is_three_queries_and_three_hops(counted_asgi):
    base = counts(counted_asgi, "/l01/hello-async")
    gather = counts(counted_asgi, "/l04/dashboard-gather")
    one = counts(counted_asgi, "/l04/dashboard-one-query")
    one_sync = counts(counted_asgi, "/l04/dashboard-one-query-sync")
    assert (gather["queries"], one["queries"], one_sync["queries"]) == (3, 1, 1)
    assert gather["sync_to_async"] == base["sync_to_async"] + 3
    assert one["sync_to_async"] == base["sync_to_async"] + 1
    # A sync view under ASGI: one hop for the view, none for its query.
    assert one_sync["sync_to_async"] == base["sync_to_async"] + 1


@pytest.mark.parametrize(
    ("mode", "queries"), [("one", 1 + 50), ("peers", 2), ("select_related", 1)]
)
def test_fetch_modes_query_counts(counted_asgi, mode, queries):
    assert counts(counted_asgi, f"/l04/orders?mode={mode}")["queries"] == queries
    assert counts(counted_asgi, f"/l04/orders?limit=7&mode={mode}")["queries"] == {
        "one": 8, "peers": 2, "select_related": 1,
    }[mode]  # fmt: skip


def test_fetch_modes_give_the_same_orders(counted_asgi, counted_wsgi):
    bodies = {fetch(url, f"/l04/orders?mode={mode}").body
              for url in (counted_asgi, counted_wsgi)
              for mode in ("one", "peers", "select_related")}
    assert len(bodies) == 1
    orders = json.loads(bodies.pop())
    assert [o["id"] for o in orders] == list(range(1, 51))
    assert list(orders[0]) == ["id", "customer", "amount"]


def test_fetch_mode_raise_is_a_409_with_djangos_message(counted_asgi):
    before = read(counted_asgi)
    response = fetch(counted_asgi, "/l04/orders?mode=raise")
    after = read(counted_asgi)
    assert (response.status, response.json()) == (
        409, {"error": "Fetching of Order.customer blocked."}
    )
    assert after["queries"] - before["queries"] == 1


def test_orders_bad_parameters(counted_asgi):
    response = fetch(counted_asgi, "/l04/orders?mode=lazy")
    assert (response.status, response.json()) == (
        400, {"error": "mode must be one of one, peers, raise, select_related, got 'lazy'."}
    )
    response = fetch(counted_asgi, "/l04/orders?limit=0")
    assert (response.status, response.json()) == (
        400, {"error": "limit must be a whole number from 1 to 1000, got '0'."}
    )
