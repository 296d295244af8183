"""
Lesson 6's claim of the same work from every framework, in-process on the lab's
PostgreSQL: the raw endpoints' query (``.values()``) and Ninja's and DRF's (``.only()``)
select the same columns in the same order and return the same rows; only the Python
objects built from them differ. And the microbench's "serializers" task, which times
that difference.

Django is configured in a child process (this one must not configure it: other test
modules start servers with other settings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lessons import microbench

LAB = Path(__file__).resolve().parent.parent / "lab_project"

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
