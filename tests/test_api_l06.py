"""
Lesson 6's endpoints (raw Django, Ninja and DRF, each with and without orjson) against
real servers on the lab's PostgreSQL: byte-identical bodies, the same 400, one query per
request; the in-process serializers give the same bytes. And its claim of the same work
from every framework, in-process: the raw endpoints' query (``.values()``) and Ninja's
and DRF's (``.only()``) select the same columns in the same order and return the same
rows; only the Python objects built from them differ. And the microbench's "serializers"
task, which times that difference.

Django is configured in a child process (this one must not configure it: other test
modules start servers with other settings).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import counts, fetch, headers
from lessons import microbench

LAB = Path(__file__).resolve().parent.parent / "lab_project"
FRAMEWORKS = ("raw", "raw-orjson", "ninja", "ninja-orjson", "drf")
LIMITS = (1, 10, 100, 1000)

SAME_WORK = r"""
import json, re, sys
import django
django.setup()
from django.db import connection
from api import l06

def sql(qs):
    text, params = qs.query.get_compiler(using="default").as_sql()
    return text % tuple(params)

out = {}
for n in map(int, sys.argv[1:]):
    values_sql, only_sql = sql(l06._rows(n)), sql(l06._items(n))
    dicts, items = l06._values(n), l06._instances(n)
    out[n] = {
        "values_sql": values_sql, "only_sql": only_sql,
        "same_rows": [tuple(d.values()) for d in dicts]
                     == [tuple(getattr(i, f) for f in l06.FIELDS) for i in items],
        "dict_keys": sorted({tuple(d) for d in dicts}),
        "deferred": sorted(set().union(*(i.get_deferred_fields() for i in items))),
        "instances": sorted({type(i).__name__ for i in items}),
    }
print(json.dumps({"fields": list(l06.FIELDS), "rows": list(l06.ROWS), "out": out}))
"""


def _django_env(lab) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DJANGO_"))}
    return env | {"DJANGO_SETTINGS_MODULE": "lab.settings", "LAB_MIDDLEWARE": "none",
                  "LAB_DATABASE_URL": lab.services.database_url, "LAB_SECRET_KEY": "l06-tests"}


def _columns(sql: str) -> list[str]:
    """The selected columns, in order, without the table name or aliases."""
    select = sql.split(" FROM ")[0].removeprefix("SELECT ")
    return [part.split(" AS ")[0].split(".")[-1].strip('"') for part in select.split(", ")]


def test_raw_and_framework_queries_select_the_same_columns_and_rows(lab):
    done = subprocess.run([sys.executable, "-c", SAME_WORK, "1", "100", "1000"], cwd=LAB,
                          env=_django_env(lab), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    fields = result["fields"]
    assert fields == ["id", "name", "category", "price", "quantity"]
    assert result["rows"] == ["dicts (.values)", "Item instances (.only)"]
    for n, got in result["out"].items():
        assert _columns(got["values_sql"]) == fields == _columns(got["only_sql"]), got
        for sql in (got["values_sql"], got["only_sql"]):
            assert sql.count("SELECT") == 1 and '"catalog_item"' in sql and "JOIN" not in sql
            assert sql.endswith(f"ASC LIMIT {n}")
        # How Django writes the two: aliases and a positional ORDER BY for .values().
        assert ' AS "id"' in got["values_sql"] and " ORDER BY 1 ASC" in got["values_sql"]
        assert " AS " not in got["only_sql"]
        assert ' ORDER BY "catalog_item"."id" ASC' in got["only_sql"]
        assert got["same_rows"] is True
        assert got["dict_keys"] == [fields]
        assert got["deferred"] == ["active", "created"]
        assert got["instances"] == ["Item"]


def test_serializers_microbench_times_the_row_objects_at_the_largest_size(lab):
    result = microbench.run(lab, "serializers", sizes=[1, 10], budget=200, repeats=1)
    assert set(result) == {"1", "10", "rows"}
    for size in ("1", "10"):
        assert set(result[size]) == {"raw", "raw-orjson", "ninja", "ninja-orjson", "drf"}
        assert all(v > 0 for v in result[size].values())
    assert result["rows"]["items"] == 10
    assert set(result["rows"]) == {"items", "dicts (.values)", "Item instances (.only)"}
    assert all(result["rows"][k] > 0 for k in ("dicts (.values)", "Item instances (.only)"))


# Over HTTP ##############################################################################


@pytest.fixture(scope="module")
def bodies(counted_asgi) -> dict[tuple[str, int], bytes]:
    result = {}
    for framework in FRAMEWORKS:
        for limit in LIMITS:
            response = fetch(counted_asgi, f"/l06/{framework}/items?limit={limit}")
            assert response.status == 200, response.body
            assert headers(response)["content-type"].split(";")[0] == "application/json"
            result[framework, limit] = response.body
    return result


@pytest.mark.parametrize("limit", LIMITS)
def test_five_frameworks_byte_identical(bodies, counted_wsgi, limit):
    reference = bodies["raw", limit]
    for framework in FRAMEWORKS:
        assert bodies[framework, limit] == reference, framework
    # ... and the same under WSGI (with the default middleware).
    for framework in ("raw", "drf"):
        assert fetch(counted_wsgi, f"/l06/{framework}/items?limit={limit}").body == reference
    items = json.loads(reference)
    assert len(items) == limit
    assert [item["id"] for item in items] == list(range(1, limit + 1))
    assert list(items[0]) == ["id", "name", "category", "price", "quantity"]
    assert all(re.fullmatch(r"[0-9]+\.[0-9]{2}", item["price"]) for item in items)
    assert reference.isascii() and b", " not in reference and b'": ' not in reference


def test_default_limit_is_10(counted_asgi, bodies):
    for framework in FRAMEWORKS:
        assert fetch(counted_asgi, f"/l06/{framework}/items").body == bodies["raw", 10]


@pytest.mark.parametrize("raw", ["0", "1001", "x", "-5"])
def test_bad_limit_is_the_same_400_everywhere(counted_asgi, raw):
    expected = {"error": f"limit must be a whole number from 1 to 1000, got {raw!r}."}
    for framework in FRAMEWORKS:
        response = fetch(counted_asgi, f"/l06/{framework}/items?limit={raw}")
        assert (response.status, response.json()) == (400, expected), framework


def test_one_query_per_request_and_drf_renders_in_its_own_hop(counted_asgi):
    sync_view = counts(counted_asgi, "/l01/hello")
    for framework in FRAMEWORKS:
        got = counts(counted_asgi, f"/l06/{framework}/items")
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
    done = subprocess.run(
        [sys.executable, "-c", SERIALIZE, *map(str, LIMITS)], cwd=LAB, env=_django_env(lab),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["frameworks"] == list(FRAMEWORKS)
    for framework in FRAMEWORKS:
        for limit in LIMITS:
            expected = hashlib.sha256(bodies[framework, limit]).hexdigest()
            assert result["hashes"][f"{framework} {limit}"] == expected, (framework, limit)
