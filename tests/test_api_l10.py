"""Lesson 10's ``/l10/silk-findings`` against real servers (silk records, a server without
silk answers), and its profile readers (``pstats_shares``, ``tree_shares``) on known input.

The endpoint tests start servers: run them under the machine lock.  The reader tests run
the lab project's Django in a subprocess on a throw-away SQLite file (no server, no lock).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from lessons.probes import get
from lessons.profile import Profile

ROOT = Path(__file__).resolve().parent.parent


def ok(url: str, path: str) -> bytes:
    reply = get(url, path)
    assert reply.status == 200, (url, path, reply.status, reply.body[:300])
    return reply.body


# Endpoint ###############################################################################


@pytest.fixture(scope="module")
def profile_dir(lab) -> Iterator[Path]:
    path = lab.home / "profiles" / f"test-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


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
    tag = uuid.uuid4().hex[:12]
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
