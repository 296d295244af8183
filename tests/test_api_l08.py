"""
Lesson 8's endpoints against real servers on the lab's PostgreSQL: one query sync and
async, the statement timeout (a 504 sentence), Django's pool of one (a wait, then a 503
sentence), an unreachable database, the guide's django-db-connection-pool settings
(LAB_DJ_DB_CONN_POOL), what a backend hands Django (/l08/connection), each pool's
counters (/l08/pool-stats), and a connection that PostgreSQL closed under a running
server (a restart) answered as a 503 sentence.

Functional only: a handful of requests per check; timings only where PostgreSQL
guarantees them (``statement_timeout``, the pool's timeout), with generous bounds. One
test restarts PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import STATEMENT_TIMEOUT_MS
from lessons.probes import get, together
from lessons.profile import Profile
from lessons.services import free_port

FAIRY = "sqlalchemy.pool.base._ConnectionFairy"
PSYCOPG = "psycopg.Connection"


@pytest.fixture(scope="module")
def guide_asgi(lab) -> Iterator[Any]:
    with lab.serve(Profile(server="uvicorn", middleware="none", dj_db_conn_pool=True)) as srv:
        yield srv


@pytest.fixture(scope="module")
def guide_wsgi(lab) -> Iterator[Any]:
    with lab.serve(Profile(server="gunicorn-sync", middleware="none", dj_db_conn_pool=True,
                           conn_health_checks=True)) as srv:
        yield srv


def test_the_guides_pool_hands_django_a_pooled_psycopg_connection(guide_asgi, guide_wsgi):
    for srv in (guide_asgi, guide_wsgi):
        assert get(srv.url, "/l08/one-query").status == 200
        reply = get(srv.url, "/l08/connection")
        assert (reply.status, reply.json()) == (200, {
            "engine": "dj_db_conn_pool.backends.postgresql", "connection": FAIRY, "driver": PSYCOPG,
        })  # fmt: skip
        assert get(srv.url, "/l08/one-query-async").status == 200


def test_the_guides_pool_stats(guide_wsgi):
    get(guide_wsgi.url, "/l08/one-query")
    stats = get(guide_wsgi.url, "/l08/pool-stats").json()
    # One sync worker, one request at a time: one connection, back in the pool between requests.
    assert stats == {"pool": "sqlalchemy QueuePool", "size": 10, "checked_in": 1, "checked_out": 0,
                     "overflow": -9, "timeout": 30.0}


def test_the_guides_pool_under_asgi_returns_connections_after_each_request(guide_asgi):
    replies = [get(guide_asgi.url, "/l08/one-query") for _ in range(20)]
    assert all(r.status == 200 for r in replies)
    stats = get(guide_asgi.url, "/l08/pool-stats").json()
    assert stats["checked_out"] == 0 and stats["checked_in"] >= 1


def test_django_backend_and_no_pool(lab):
    with lab.serve(Profile(server="uvicorn", middleware="none")) as srv:
        assert get(srv.url, "/l08/connection").json() == {
            "engine": "django.db.backends.postgresql", "connection": PSYCOPG, "driver": PSYCOPG,
        }  # fmt: skip
        reply = get(srv.url, "/l08/pool-stats")
        assert (reply.status, reply.json()) == (404, {
            "error": "There is no connection pool: LAB_DB_POOL and LAB_DJ_DB_CONN_POOL are off."
        })  # fmt: skip


def test_a_connection_closed_by_a_restart_is_a_503_sentence_then_a_reconnect(lab):
    profile = Profile(server="gunicorn-sync", middleware="none", conn_max_age=60)
    with lab.serve(profile) as stale, lab.serve(profile.replace(conn_health_checks=True)) as checked:
        for srv in (stale, checked):
            assert get(srv.url, "/l08/one-query").status == 200
        with lab.database_down():
            pass
        reply = get(stale.url, "/l08/one-query")
        assert (reply.status, reply.json()) == (503, {
            "error": "The database closed the connection: terminating connection due to "
                     "administrator command"
        })  # fmt: skip
        assert get(stale.url, "/l08/one-query").status == 200      # Django reconnected
        assert get(checked.url, "/l08/one-query").status == 200    # the health check did it first


def test_backend_pid_counts_the_connections_a_server_opened(lab, guide_wsgi):
    def pids(srv, n=4):
        replies = [get(srv.url, "/l08/backend") for _ in range(n)]
        assert all(r.status == 200 for r in replies)
        return {r.json()["pid"] for r in replies}

    with lab.serve(Profile(server="gunicorn-sync", middleware="none")) as fresh, \
            lab.serve(Profile(server="gunicorn-sync", middleware="none", conn_max_age=60)) as kept:
        assert len(pids(fresh)) == 4     # CONN_MAX_AGE=0: a new connection per request
        assert len(pids(kept)) == 1      # one sync worker reuses its connection
    assert len(pids(guide_wsgi)) == 1    # the guide's pool: one connection, checked in and out


# Statement timeout, Django's own pool, an unreachable database ##########################


@pytest.mark.parametrize("path", ["/l08/one-query", "/l08/one-query-async"])
def test_one_query(redis_asgi, locmem_wsgi, path):
    for url in (redis_asgi.url, locmem_wsgi.url):
        reply = get(url, path)
        assert (reply.status, reply.body) == (200, b'{"ok": true}')


def test_statement_timeout_is_a_504_sentence(redis_asgi):
    reply = get(redis_asgi.url, "/l08/slow?ms=50")
    assert (reply.status, reply.json()) == (200, {"ms": 50})
    reply = get(redis_asgi.url, f"/l08/slow?ms={STATEMENT_TIMEOUT_MS * 4}")
    assert (reply.status, reply.json()) == (504, {
        "error": "The database cancelled the query after the statement timeout "
                 f"({STATEMENT_TIMEOUT_MS} ms)."
    })  # fmt: skip
    assert 0.9 * STATEMENT_TIMEOUT_MS / 1000 <= reply.seconds < 3 * STATEMENT_TIMEOUT_MS / 1000
    # The connection survives the cancellation.
    assert get(redis_asgi.url, "/l08/one-query").status == 200


def test_pool_of_one_makes_the_second_request_wait_then_time_out(lab):
    profile = Profile(server="uvicorn", middleware="none", db_pool=True, db_pool_size=1,
                      extra_env=(("LAB_DB_POOL_TIMEOUT", "1"),))
    with lab.serve(profile) as srv:
        waits = sorted(r.json()["waited_ms"]
                       for r in together(srv.url, ["/l08/pool-wait?ms=300"] * 2))
        # The second waited for the first's 300 ms hold (minus their arrival skew), and
        # less than the pool's 1 s timeout: at least 200 ms longer than the first.
        assert waits[1] - waits[0] >= 200 and waits[1] < 1000, waits
        replies = together(srv.url, ["/l08/slow?ms=2000"] * 2)
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
