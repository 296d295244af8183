"""
Lesson 10, profiling: a deliberately slow endpoint for the profilers to explain, its
fix, and what silk stored about a run's requests. ``LAB_PROFILER`` (silk, pyinstrument,
debug-toolbar) profiles the requests to these paths; ``LAB_INSTRUMENT=1`` counts their
queries.

* ``GET /l10/slow-orders?limit=N`` (1 to 1000, default 50): the first N orders by id as
  ``[{"id","customer","amount","status"}, ...]``, built the way a profiler catches:

  - **N+1 queries**: the orders in one query, then ``order.customer`` read per order
    without ``select_related``, one more query each (Django 6.1's default fetch mode,
    ``FETCH_ONE``): 1 + N queries. silk's SQL view lists them (the same statement N
    times, with the customer's id inlined); pyinstrument shows the time under the
    foreign key descriptor's ``__get__``; the debug toolbar counts them in its SQL panel
    and its ``Server-Timing`` header.
  - **Wasteful serialization**: each row goes through Django's serialization framework
    on its own (``serializers.serialize("json", [order])``: a serializer object, every
    field of the model, a JSON document) and straight back through ``json.loads``, only
    to pick two fields out of it: N calls of ``serialize`` and of ``loads``.

* ``GET /l10/fast-orders?limit=N``: the same body from one query (a JOIN through
  ``values_list("customer__name")``) and one ``json.dumps`` of plain tuples turned into
  dicts. Byte-identical to slow-orders: the same rendering function writes both.

* ``GET /l10/silk-findings?of=TAG``: what silk stored about the requests whose query
  string carried ``run=TAG`` (a tag the notebook puts on this run's requests; the views
  above ignore parameters they do not know), read from silk's tables with plain SQL,
  oldest first: per request, silk's time, its query count, how many of those queries
  it ran an EXPLAIN for, the statements it saw most often (numbers replaced by ``?``),
  and what its cProfile text (``silk_request.pyprofile``, ``SILKY_PYTHON_PROFILER =
  True``) says about a few functions (``PROFILE_FUNCTIONS``): their cumulative time as a
  share of the profile's total and their row's place in the report, or null when the
  text does not name them (silk keeps the first 256 lines of the report, sorted by
  cumulative time). Any lab server answers it (silk's tables are in every lab
  database); ask one without silk, so that silk does not record the question. ``of``
  is 4 to 40 letters, digits, ``-`` or ``_`` (400 otherwise); a database without silk's
  tables answers 501.

``amount`` is a string with two decimals (a ``Decimal`` never becomes a float), as in
lesson 4's orders.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal
from typing import Any

from catalog.models import Order
from django.core import serializers
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from api.params import row_limit
from api.render import COMPACT_JSON

DEFAULT_LIMIT = 50

# The functions a reader looks for in a profile of slow-orders: (file, function name).
# The file is matched on its path's ending, so any install location matches.
PROFILE_FUNCTIONS: dict[str, tuple[str, str]] = {
    "serialize": ("django/core/serializers/__init__.py", "serialize"),
    "json.loads": ("json/__init__.py", "loads"),
    "related-object fetch": ("django/db/models/fields/related_descriptors.py", "__get__"),
    "silk: EXPLAIN": ("silk/sql.py", "_explain_query"),
    "silk: stack traces": ("traceback.py", "format_stack"),
}
TAG = re.compile(r"[A-Za-z0-9_-]{4,40}")
TOP_STATEMENTS = 3


def _row(order_id: int, customer: str, amount: Decimal, status: str) -> dict[str, Any]:
    return {"id": order_id, "customer": customer, "amount": f"{amount:.2f}", "status": status}


def _response(rows: list[dict[str, Any]]) -> HttpResponse:
    """Compact JSON (no spaces), UTF-8: the one rendering of both endpoints."""
    body = json.dumps(rows, **COMPACT_JSON)
    return HttpResponse(body.encode(), content_type="application/json")


def _slow_row(order: Order) -> dict[str, Any]:
    # The whole model through Django's serializers, then parsed back, for two fields.
    fields = json.loads(serializers.serialize("json", [order]))[0]["fields"]
    # order.customer: one query per order (no select_related).
    return _row(order.id, order.customer.name, Decimal(fields["amount"]), fields["status"])


def slow_orders(request: HttpRequest) -> HttpResponse:
    limit = row_limit(request, DEFAULT_LIMIT)
    if isinstance(limit, JsonResponse):
        return limit
    orders = Order.objects.order_by("id")[:limit]
    return _response([_slow_row(order) for order in orders])


def fast_orders(request: HttpRequest) -> HttpResponse:
    limit = row_limit(request, DEFAULT_LIMIT)
    if isinstance(limit, JsonResponse):
        return limit
    # One query: SELECT order.id, customer.name, order.amount, order.status ... INNER JOIN.
    rows = Order.objects.order_by("id").values_list("id", "customer__name", "amount", "status")
    return _response([_row(*row) for row in rows[:limit]])


# Reading profiles ######################################################################

# "  137328 function calls (124792 primitive calls) in 0.839 seconds"
_PSTATS_TOTAL = re.compile(r"(\d+) function calls(?: \(\d+ primitive calls\))? in ([\d.]+) seconds")
# "ncalls tottime percall cumtime percall file:line(function)": the cumulative time, file
# and function of rows that name a file (not "{built-in method ...}")
_PSTATS_ROW = re.compile(
    r"^\s*[\d/]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+(.+?):\d+\((.+)\)\s*$")


def _is(file: str | None, function: str, wanted: tuple[str, str]) -> bool:
    return function == wanted[1] and (file or "").replace("\\", "/").endswith(wanted[0])


_PREFIX = re.compile(r"\S*[/\\](site-packages|python3\.\d+|lab_project)[/\\]")


def _short(line: str) -> str:
    """A report row with the file's directory up to its package removed."""
    return _PREFIX.sub("", line.strip())


def pstats_shares(text: str, functions: dict[str, tuple[str, str]] = PROFILE_FUNCTIONS
                  ) -> dict[str, Any]:
    """What a ``pstats`` report (``print_stats()``, as silk stores it) says about
    ``functions``: the report's total seconds, its number of function rows (rows without
    a file, such as built-ins, are not counted), and for each function its largest
    cumulative time as a share of the total, that row's place among the function rows
    (1 = first) and the row itself, paths shortened to the package (None when no row
    names it; a share is 0 when the report's total rounds to 0.000 s).  Empty text (no
    profile) gives total 0 and no shares."""
    total = _PSTATS_TOTAL.search(text)
    seconds = float(total.group(2)) if total else 0.0
    rows = []
    for line in text.splitlines():
        m = _PSTATS_ROW.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3), _short(line)))
    shares: dict[str, float | None] = {}
    lines: dict[str, str | None] = {}
    ranks: dict[str, int | None] = {}
    for label, wanted in functions.items():
        found = sorted((cum, -rank, line) for rank, (cum, file, function, line)
                       in enumerate(rows, start=1) if _is(file, function, wanted))
        shares[label] = (found[-1][0] / seconds if seconds > 0 else 0.0) if found else None
        ranks[label] = -found[-1][1] if found else None
        lines[label] = found[-1][2] if found else None
    return {"total_s": seconds, "rows": len(rows), "shares": shares, "ranks": ranks,
            "lines": lines}


def tree_shares(root: Any, functions: dict[str, tuple[str, str]] = PROFILE_FUNCTIONS
                ) -> dict[str, float | None]:
    """The same shares from a pyinstrument frame tree (``session.root_frame()``): the time
    of the frames running each function (outermost only, so recursion counts once) over
    the root's time; None when no frame runs it."""
    out: dict[str, float | None] = {}
    for label, wanted in functions.items():
        spent, seen, stack = 0.0, False, [root]
        while stack:
            frame = stack.pop()
            if _is(frame.file_path, frame.function, wanted):
                spent, seen = spent + frame.time, True
            else:
                stack.extend(frame.children)
        out[label] = spent / root.time if seen and root.time > 0 else None
    return out


# What silk stored #######################################################################

_NUMBER = re.compile(r"\b\d+(\.\d+)?\b")


def _tagged(params: str, tag: str) -> bool:
    try:
        return json.loads(params or "{}").get("run") == tag
    except (ValueError, AttributeError):
        return False


def silk_findings(request: HttpRequest) -> JsonResponse:
    tag = request.GET.get("of", "")
    if not TAG.fullmatch(tag):
        return JsonResponse({"error": "of must be 4 to 40 letters, digits, - or _, "
                                      f"got {tag!r}."}, status=400)
    try:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT id, path, query_params, time_taken, num_sql_queries, pyprofile "
                "FROM silk_request WHERE query_params LIKE %s ORDER BY start_time",
                [f"%{tag}%"])
            requests = [r for r in cur.fetchall() if _tagged(r[2], tag)]
            found = []
            for rid, rpath, _params, time_taken, num_queries, pyprofile in requests:
                cur.execute("SELECT query, time_taken, analysis FROM silk_sqlquery "
                            "WHERE request_id = %s", [rid])
                queries = cur.fetchall()
                times: Counter[str] = Counter()
                spent: Counter[str] = Counter()
                for query, ms, _analysis in queries:
                    statement = _NUMBER.sub("?", query)
                    times[statement] += 1
                    spent[statement] += ms or 0.0
                found.append({
                    "id": rid, "path": rpath, "time_ms": time_taken, "queries": num_queries,
                    "stored_queries": len(queries),
                    "explained": sum(1 for _q, _ms, analysis in queries if analysis),
                    "statements": [{"statement": s, "times": n, "ms": spent[s]}
                                   for s, n in times.most_common(TOP_STATEMENTS)],
                    "profile": pstats_shares(pyprofile or ""),
                })
    except DatabaseError as exc:
        return JsonResponse({"error": f"silk's tables are not in this database ({exc})."
                                      .replace("\n", " ")}, status=501)
    return JsonResponse({"of": tag, "requests": found})


urlpatterns = [
    path("slow-orders", slow_orders),
    path("fast-orders", fast_orders),
    path("silk-findings", silk_findings),
]
