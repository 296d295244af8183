"""Lesson 10's endpoints against real servers on the lab's PostgreSQL and Valkey:
``/l10/silk-findings`` (silk records, a server without silk answers), slow and fast
orders (byte-identical, N+1 queries against one), what each profiler records and that it
leaves the bodies untouched; and its profile readers (``pstats_shares``, ``tree_shares``)
on known input (the profiler settings are tests/test_settings.py).

The endpoint tests start servers: run them under the machine lock.  Query counts are
exact integers from the counters (``Profile(instrument=True)``); what the profilers
recorded is read back the way the notebook reads it: silk's tables with plain SQL,
pyinstrument's HTML files from ``LAB_PROFILE_DIR``.  The reader tests run the lab
project's Django in a subprocess on a throw-away SQLite file (no server, no lock).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from helpers import ok, sql, unique
from lessons.counters import per_request
from lessons.probes import get
from lessons.profile import Profile

ROOT = Path(__file__).resolve().parent.parent
# The last requests silk recorded for /l10/, with their query counts (notebook 10 reads
# them through /l10/silk-findings).
SILK_REQUESTS_SQL = (
    "SELECT id, path, query_params, time_taken, num_sql_queries, prof_file, pyprofile "
    "FROM silk_request WHERE path LIKE '/l10/%%' ORDER BY start_time DESC LIMIT %s"
)
SILK_QUERIES_SQL = (
    "SELECT query, time_taken FROM silk_sqlquery WHERE request_id = %s "
    "ORDER BY time_taken DESC, id"
)


# Silk's findings ########################################################################


@pytest.fixture(scope="module")
def servers(lab, profile_dir) -> Iterator[tuple[str, str]]:
    """(silk, plain): silk as the lab sets it up, and a server without a profiler."""
    with lab.serve(Profile(profiler="silk", middleware="none"),
                   env={"LAB_PROFILE_DIR": str(profile_dir)}) as silk, \
            lab.serve(Profile(middleware="none")) as plain:
        yield silk.url, plain.url


@pytest.fixture(scope="module")
def tagged(servers) -> tuple[str, dict]:
    """Two tagged slow-orders requests (limit 4), one tagged fast-orders, one tagged
    /l01/hello, then the findings for the tag, asked of the server without silk."""
    silk, plain = servers
    tag = unique()
    for path in ("/l10/slow-orders?limit=4", "/l10/slow-orders?limit=4", "/l10/fast-orders?limit=4",
                 "/l01/hello"):
        ok(silk, f"{path}{'&' if '?' in path else '?'}run={tag}")
    return tag, json.loads(ok(plain, f"/l10/silk-findings?of={tag}"))


def test_findings_list_exactly_the_tagged_profiled_requests(tagged):
    tag, found = tagged
    assert found["of"] == tag
    assert [r["path"] for r in found["requests"]] == [
        "/l10/slow-orders", "/l10/slow-orders", "/l10/fast-orders"]  # /l01/hello: not intercepted
    assert all(r["time_ms"] > 0 for r in found["requests"])


def test_findings_show_the_n_plus_one_and_silks_explains(tagged):
    _, found = tagged
    slow, _, fast = found["requests"]
    assert (slow["queries"], slow["stored_queries"], slow["explained"]) == (5, 5, 5)
    (customer, orders) = slow["statements"]
    assert customer["times"] == 4 and 'FROM "catalog_customer"' in customer["statement"]
    assert '"catalog_customer"."id" = ?' in customer["statement"]  # the id, as a number, became ?
    assert orders["times"] == 1 and 'FROM "catalog_order"' in orders["statement"]
    assert all(s["ms"] >= 0 for s in slow["statements"])
    assert (fast["queries"], fast["explained"]) == (1, 1)
    assert [s["times"] for s in fast["statements"]] == [1]


def test_findings_read_silks_cprofile_text(tagged):
    _, found = tagged
    slow, _, fast = found["requests"]
    profile = slow["profile"]
    assert profile["total_s"] > 0 and 0 < profile["rows"] <= 256
    ranks = profile["ranks"]
    assert 1 <= ranks["related-object fetch"] < ranks["serialize"] <= profile["rows"]
    shares = profile["shares"]
    for name in ("serialize", "related-object fetch", "silk: EXPLAIN", "silk: stack traces"):
        assert 0 < shares[name] <= 1, (name, shares)
    line = profile["lines"]["serialize"]
    assert "django/core/serializers/__init__.py:" in line and line.endswith("(serialize)")
    assert "site-packages" not in line  # shortened to the package
    # fast-orders serializes nothing and reads no related object
    assert fast["profile"]["shares"]["serialize"] is None
    assert fast["profile"]["shares"]["related-object fetch"] is None
    assert fast["profile"]["lines"]["serialize"] is None


def test_asking_silk_itself_adds_no_tagged_request(servers, tagged):
    silk, _ = servers
    tag, found = tagged
    again = json.loads(ok(silk, f"/l10/silk-findings?of={tag}"))  # silk records this question
    # ...but not as a tagged request
    assert [r["id"] for r in again["requests"]] == [r["id"] for r in found["requests"]]


def test_silks_dashboard_answers(servers):
    silk, _ = servers
    assert b"silk" in ok(silk, "/silk/").lower()


def test_an_unknown_tag_finds_nothing(servers):
    _, plain = servers
    assert json.loads(ok(plain, "/l10/silk-findings?of=never-sent-0")) == {
        "of": "never-sent-0", "requests": []}


@pytest.mark.parametrize("tag", ["", "abc", "a" * 41, "x y", "ab/cd", "ab%cd", "ab'cd"])
def test_a_bad_tag_is_a_400(servers, tag):
    _, plain = servers
    reply = get(plain, f"/l10/silk-findings?of={quote(tag)}")
    assert reply.status == 400
    assert reply.json() == {"error": f"of must be 4 to 40 letters, digits, - or _, got {tag!r}."}


def test_a_missing_tag_is_a_400(servers):
    _, plain = servers
    reply = get(plain, "/l10/silk-findings")
    assert reply.status == 400 and "got ''" in reply.json()["error"]


# Slow and fast orders ###################################################################


@pytest.mark.parametrize("query", ["", "?limit=1", "?limit=7"])
def test_slow_and_fast_orders_are_byte_identical(redis_counted_wsgi, redis_counted_asgi, query):
    slow = ok(redis_counted_wsgi, f"/l10/slow-orders{query}")
    rows = json.loads(slow)
    assert len(rows) == (int(query.split("=")[1]) if query else 50)
    assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)
    assert all(list(row) == ["id", "customer", "amount", "status"] for row in rows)
    assert all(row["amount"].split(".")[1].isdigit() and len(row["amount"].split(".")[1]) == 2
               for row in rows)
    assert b'": ' not in slow and b', "' not in slow  # compact
    for url in (redis_counted_wsgi, redis_counted_asgi):
        assert ok(url, f"/l10/fast-orders{query}") == slow
        assert ok(url, f"/l10/slow-orders{query}") == slow


@pytest.mark.parametrize("limit", [1, 10, 50])
def test_slow_orders_are_n_plus_one_queries_fast_orders_one(redis_counted_wsgi, limit):
    assert per_request(redis_counted_wsgi, f"/l10/slow-orders?limit={limit}", 3)["queries"] == 1 + limit
    assert per_request(redis_counted_wsgi, f"/l10/fast-orders?limit={limit}", 3)["queries"] == 1


def test_bad_limit_is_a_400(redis_counted_wsgi):
    reply = get(redis_counted_wsgi, "/l10/slow-orders?limit=0")
    assert reply.status == 400
    assert reply.json() == {"error": "limit must be a whole number from 1 to 1000, got '0'."}


# The profilers ##########################################################################


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


def test_profilers_leave_the_bodies_untouched(redis_counted_wsgi, silk, pyinstrument, debug_toolbar):
    for path in ("/l10/fast-orders", "/l10/slow-orders?limit=5", "/l11/raw-cached/items",
                 "/l01/hello"):
        expected = ok(redis_counted_wsgi, path)
        for url in (silk, pyinstrument, debug_toolbar):
            assert ok(url, path) == expected, (url, path)


def test_silk_records_the_profiling_lessons_requests_only(lab, silk, profile_dir):
    def count(path: str) -> int:
        return sql(lab, "SELECT count(*) FROM silk_request WHERE path = %s", (path,))[0][0]

    hello = count("/l01/hello")
    ok(silk, "/l01/hello")
    assert count("/l01/hello") == hello == 0

    run = unique()  # an extra parameter the view ignores, to find this request
    ok(silk, f"/l10/slow-orders?limit=3&run={run}")
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
    ok(pyinstrument, "/l01/hello")
    assert pages() == before
    ok(pyinstrument, "/l10/slow-orders?limit=3")
    (page,) = pages() - before
    assert page.name.endswith("_l10_slow-orders.html")
    text = page.read_text()
    assert "<html" in text.lower() and "_slow_row" in text


# Readers (no server) ####################################################################

READERS = textwrap.dedent('''
    import json
    from types import SimpleNamespace as F

    import django
    django.setup()
    from api.l10 import pstats_shares, tree_shares

    REPORT = """         1234 function calls (1200 primitive calls) in 0.500 seconds

       Ordered by: cumulative time

       ncalls  tottime  percall  cumtime  percall filename:lineno(function)
            1    0.000    0.000    0.500    0.500 /x/site-packages/api/l10.py:64(slow_orders)
           50    0.001    0.000    0.400    0.008 /x/site-packages/django/db/models/fields/related_descriptors.py:234(__get__)
           50    0.001    0.000    0.010    0.000 /x/site-packages/django/db/models/fields/related_descriptors.py:100(__get__)
    10907/946    0.017    0.000    0.300    0.001 {built-in method builtins.len}
           50    0.001    0.000    0.050    0.001 /x/site-packages/django/core/serializers/__init__.py:128(serialize)
           50    0.000    0.000    0.005    0.000 /usr/lib/python3.12/json/__init__.py:299(loads)
            9    0.000    0.000    0.200    0.000 /x/site-packages/other/serializers/__init__.py:1(serialize)
    """
    leaf = lambda f, fn, t, *kids: F(file_path=f, function=fn, time=t, children=list(kids))
    ser = "/x/site-packages/django/core/serializers/__init__.py"
    tree = leaf("/a/view.py", "view", 2.0,
                leaf(ser, "serialize", 0.5, leaf(ser, "serialize", 0.3)),   # recursion: once
                leaf("/b/other.py", "g", 0.6, leaf(ser, "serialize", 0.1)),
                leaf("/c/json/__init__.py", "loads", 0.2))
    print(json.dumps({"report": pstats_shares(REPORT), "empty": pstats_shares(""),
                      "tree": tree_shares(tree)}))
''')


@pytest.fixture(scope="module")
def readers(tmp_path_factory) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    env.update(DJANGO_SETTINGS_MODULE="lab.settings", LAB_SECRET_KEY="test",
               LAB_DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('l10') / 'db.sqlite3'}")
    out = subprocess.run([sys.executable, "-c", READERS], cwd=ROOT / "lab_project", env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_pstats_shares(readers):
    report = readers["report"]
    assert report["total_s"] == 0.5 and report["rows"] == 6  # the built-in row has no file
    assert report["shares"] == {"serialize": 0.1, "json.loads": 0.01, "related-object fetch": 0.8,
                                "silk: EXPLAIN": None, "silk: stack traces": None}
    assert report["lines"]["serialize"] == (
        "50    0.001    0.000    0.050    0.001 django/core/serializers/__init__.py:128(serialize)")
    assert report["lines"]["related-object fetch"].endswith("related_descriptors.py:234(__get__)")
    assert report["ranks"] == {"serialize": 4, "json.loads": 5, "related-object fetch": 2,
                               "silk: EXPLAIN": None, "silk: stack traces": None}
    nothing = dict.fromkeys(report["shares"])
    assert readers["empty"] == {"total_s": 0.0, "rows": 0, "shares": nothing, "ranks": nothing,
                                "lines": nothing}


def test_tree_shares(readers):
    assert readers["tree"] == {"serialize": 0.3, "json.loads": 0.1, "related-object fetch": None,
                               "silk: EXPLAIN": None, "silk: stack traces": None}
