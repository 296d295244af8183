"""
Tests for lessons 10 and 11 of the lab project (profiling; the guide's checklist applied
to one endpoint), against real servers started by the lab on its PostgreSQL and Valkey.

Functional only: a handful of sequential requests per check, no load and no timing.
Query counts are exact integers from the counters (``Profile(instrument=True)``);
what the profilers recorded is read back the way the notebook reads it: silk's tables
with plain SQL, pyinstrument's HTML files from ``LAB_PROFILE_DIR``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured

from lessons import config
from lessons.counters import per_request
from lessons.probes import get
from lessons.profile import Profile, ProfileError

L11_VARIANTS = ("drf", "serializer", "serializer-async", "ninja", "ninja-async", "ninja-cached",
                "ninja-cached-async", "raw-cached", "raw-cached-async")
ACTIVE_ITEMS_SQL = "SELECT id FROM catalog_item WHERE active ORDER BY id LIMIT 20"
# The last requests silk recorded for /l10/, with their query counts (notebook 10 reads
# them through /l10/silk-findings: tests/test_api_l10.py).
SILK_REQUESTS_SQL = (
    "SELECT id, path, query_params, time_taken, num_sql_queries, prof_file, pyprofile "
    "FROM silk_request WHERE path LIKE '/l10/%%' ORDER BY start_time DESC LIMIT %s"
)
SILK_QUERIES_SQL = (
    "SELECT query, time_taken FROM silk_sqlquery WHERE request_id = %s "
    "ORDER BY time_taken DESC, id"
)


def body(url: str, path: str) -> bytes:
    reply = get(url, path)
    assert reply.status == 200, (url, path, reply.status, reply.body[:300])
    return reply.body


def sql(lab: Any, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(lab.services.database_url) as conn:
        return conn.execute(query, params).fetchall()


# Servers (one of each per module) #######################################################


@pytest.fixture(scope="module")
def profile_dir(lab) -> Iterator[Path]:
    """A directory of this test run inside the lab's own directory, removed afterwards."""
    path = lab.home / "profiles" / f"test-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def wsgi(lab) -> Iterator[str]:
    """gunicorn (sync), django-redis, no profiler, counters on."""
    with lab.serve(Profile(cache="django-redis", instrument=True)) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def asgi(lab) -> Iterator[str]:
    """uvicorn, django-redis, no middleware, counters on."""
    profile = Profile(server="uvicorn", cache="django-redis", middleware="none", instrument=True)
    with lab.serve(profile) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def silk(lab, profile_dir) -> Iterator[str]:
    with lab.serve(Profile(profiler="silk"), env={"LAB_PROFILE_DIR": str(profile_dir)}) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def pyinstrument(lab, profile_dir) -> Iterator[str]:
    profile = Profile(profiler="pyinstrument")
    with lab.serve(profile, env={"LAB_PROFILE_DIR": str(profile_dir)}) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def debug_toolbar(lab) -> Iterator[str]:
    with lab.serve(Profile(profiler="debug-toolbar", debug=True)) as srv:
        yield srv.url


# Lesson 11: one endpoint, the checklist's variants ######################################


def test_l11_variants_are_byte_identical(lab, wsgi, asgi):
    reference = body(wsgi, "/l11/drf/items")
    items = json.loads(reference)
    assert [item["id"] for item in items] == [row[0] for row in sql(lab, ACTIVE_ITEMS_SQL)]
    assert len(items) == 20 and all(list(item) == ["id", "name", "price"] for item in items)
    assert all(isinstance(item["price"], str) and item["price"].count(".") == 1 for item in items)
    assert b'": ' not in reference and b', "' not in reference  # compact
    for url in (wsgi, asgi):
        for variant in L11_VARIANTS:
            for _ in range(2):  # a miss, then (for the cached ones) a hit
                assert body(url, f"/l11/{variant}/items") == reference, (url, variant)


@pytest.mark.parametrize(
    ("variant", "queries"),
    [("drf", 1), ("serializer", 1), ("serializer-async", 1), ("ninja", 1), ("ninja-async", 1),
     ("ninja-cached", 0), ("ninja-cached-async", 0), ("raw-cached", 0), ("raw-cached-async", 0)],
)
def test_l11_queries_per_request(wsgi, variant, queries):
    path = f"/l11/{variant}/items"
    body(wsgi, path)  # warm the cache for the cached variants
    assert per_request(wsgi, path, 3)["queries"] == queries


# Lesson 10: slow and fast orders ########################################################


@pytest.mark.parametrize("query", ["", "?limit=1", "?limit=7"])
def test_slow_and_fast_orders_are_byte_identical(wsgi, asgi, query):
    slow = body(wsgi, f"/l10/slow-orders{query}")
    rows = json.loads(slow)
    assert len(rows) == (int(query.split("=")[1]) if query else 50)
    assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)
    assert all(list(row) == ["id", "customer", "amount", "status"] for row in rows)
    assert all(row["amount"].split(".")[1].isdigit() and len(row["amount"].split(".")[1]) == 2
               for row in rows)
    assert b'": ' not in slow and b', "' not in slow  # compact
    for url in (wsgi, asgi):
        assert body(url, f"/l10/fast-orders{query}") == slow
        assert body(url, f"/l10/slow-orders{query}") == slow


@pytest.mark.parametrize("limit", [1, 10, 50])
def test_slow_orders_are_n_plus_one_queries_fast_orders_one(wsgi, limit):
    assert per_request(wsgi, f"/l10/slow-orders?limit={limit}", 3)["queries"] == 1 + limit
    assert per_request(wsgi, f"/l10/fast-orders?limit={limit}", 3)["queries"] == 1


def test_bad_limit_is_a_400(wsgi):
    reply = get(wsgi, "/l10/slow-orders?limit=0")
    assert reply.status == 400
    assert reply.json() == {"error": "limit must be a whole number from 1 to 1000, got '0'."}


# Profilers ##############################################################################


def test_profilers_leave_the_bodies_untouched(wsgi, silk, pyinstrument, debug_toolbar):
    for path in ("/l10/fast-orders", "/l10/slow-orders?limit=5", "/l11/raw-cached/items",
                 "/l01/hello"):
        expected = body(wsgi, path)
        for url in (silk, pyinstrument, debug_toolbar):
            assert body(url, path) == expected, (url, path)


def test_silk_records_the_profiling_lessons_requests_only(lab, silk, profile_dir):
    def count(path: str) -> int:
        return sql(lab, "SELECT count(*) FROM silk_request WHERE path = %s", (path,))[0][0]

    hello = count("/l01/hello")
    body(silk, "/l01/hello")
    assert count("/l01/hello") == hello == 0

    run = uuid.uuid4().hex  # an extra parameter the view ignores, to find this request
    body(silk, f"/l10/slow-orders?limit=3&run={run}")
    (request_id, path, params, time_taken, num_queries, prof_file, pyprofile), = [
        row for row in sql(lab, SILK_REQUESTS_SQL, (20,)) if run in row[2]
    ]
    assert path == "/l10/slow-orders" and time_taken > 0
    assert num_queries == 4  # the orders, then one customer per order (1 + 3)
    queries = sql(lab, SILK_QUERIES_SQL, (request_id,))
    assert len(queries) == 4
    assert sum('FROM "catalog_customer"' in query for query, _ in queries) == 3
    assert "_slow_row" in pyprofile  # cProfile's text, cumulative order
    assert Path(prof_file).parent == profile_dir and Path(prof_file).stat().st_size > 0


def test_pyinstrument_writes_one_html_page_per_l10_request(pyinstrument, profile_dir):
    def pages() -> set[Path]:
        return set(profile_dir.glob("*.html"))

    before = pages()
    body(pyinstrument, "/l01/hello")
    assert pages() == before
    body(pyinstrument, "/l10/slow-orders?limit=3")
    (page,) = pages() - before
    assert page.name.endswith("_l10_slow-orders.html")
    text = page.read_text()
    assert "<html" in text.lower() and "_slow_row" in text


def test_debug_toolbar_needs_debug(load_settings):
    with pytest.raises(ProfileError, match="^The debug toolbar only runs with DEBUG on"):
        Profile(profiler="debug-toolbar")
    with pytest.raises(ImproperlyConfigured) as caught:
        load_settings(LAB_PROFILER="debug-toolbar")
    assert str(caught.value) == (
        "LAB_PROFILER='debug-toolbar' is invalid (the debug toolbar only runs with DEBUG, "
        "so it needs LAB_DEBUG=1); allowed values: none, silk, pyinstrument."
    )
    s = load_settings(LAB_PROFILER="debug-toolbar", LAB_DEBUG="1")
    assert s["MIDDLEWARE"][0] == "debug_toolbar.middleware.DebugToolbarMiddleware"
    assert s["INSTALLED_APPS"][-1] == "debug_toolbar" and s["INTERNAL_IPS"] == ["127.0.0.1"]


def test_profiler_settings(load_settings, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(config.LAB_PROJECT))  # settings import lab.profiling
    s = load_settings()
    assert s["LAB_PROFILER"] == "none" and "silk" not in s["INSTALLED_APPS"]
    s = load_settings(LAB_PROFILER="silk")
    assert s["MIDDLEWARE"][0] == "silk.middleware.SilkyMiddleware" and "silk" in s["INSTALLED_APPS"]
    assert s["SILKY_PYTHON_PROFILER"] and not s["SILKY_PYTHON_PROFILER_BINARY"]
    s = load_settings(LAB_PROFILER="silk", LAB_PROFILE_DIR=str(tmp_path))
    assert s["SILKY_PYTHON_PROFILER_BINARY"] and s["SILKY_PYTHON_PROFILER_RESULT_PATH"] == str(tmp_path)
    s = load_settings(LAB_PROFILER="pyinstrument", LAB_PROFILE_DIR=str(tmp_path))
    assert s["MIDDLEWARE"][0] == "pyinstrument.middleware.ProfilerMiddleware"
    assert s["PYINSTRUMENT_PROFILE_DIR"] == str(tmp_path)
    # Ignored by the profilers that write nothing, so a launcher may always pass it.
    assert load_settings(LAB_PROFILE_DIR=str(tmp_path / "missing"))["LAB_PROFILE_DIR"]
    for env, message in [
        ({"LAB_PROFILER": "cprofile"},
         "LAB_PROFILER='cprofile' is invalid; allowed values: none, silk, pyinstrument, "
         "debug-toolbar."),
        ({"LAB_PROFILER": "silk", "LAB_PROFILE_DIR": "profiles"},
         "LAB_PROFILE_DIR='profiles' is invalid (the path is relative); allowed values: an "
         "absolute path to an existing directory the server can write to."),
        ({"LAB_PROFILER": "pyinstrument", "LAB_PROFILE_DIR": str(tmp_path / "missing")},
         f"LAB_PROFILE_DIR='{tmp_path / 'missing'}' is invalid (it is not a writable "
         "directory); allowed values: an absolute path to an existing directory the server "
         "can write to."),
    ]:
        with pytest.raises(ImproperlyConfigured) as caught:
            load_settings(**env)
        assert str(caught.value) == message
