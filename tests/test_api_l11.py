"""
Lesson 11's timed budget endpoint, its token check and its stage clocks, and the stage
client that reads them (``lessons.stages``), against a real server of the tuned
configuration; silk profiling the /l11/ endpoint the notebook measures under it; and the
checklist's variants of one endpoint (DRF to cached raw bytes): byte-identical bodies and
their queries per request, from the counters.

Functional: a few sequential requests, one short open-loop run of 40 requests; the only
times compared are clock readings of one request against each other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import ok, sql
from lessons import silk, stages
from lessons.counters import per_request
from lessons.probes import get, request
from lessons.profile import Profile

BUDGET = "/l11/budget/items"
SALT = "l11-api-token"  # api.l11.TOKEN_SALT
L11_VARIANTS = ("drf", "serializer", "serializer-async", "ninja", "ninja-async", "ninja-cached",
                "ninja-cached-async", "raw-cached", "raw-cached-async")
ACTIVE_ITEMS_SQL = "SELECT id FROM catalog_item WHERE active ORDER BY id LIMIT 20"


def timed_profile() -> Profile:
    tuned = Profile.preset("tuned")
    return tuned.replace(middleware=f"api.l11.StageClock,{tuned.middleware},api.l11.StageClockInner",
                         workers=1)


@pytest.fixture(scope="module")
def timed(lab) -> Iterator[str]:
    with lab.serve(timed_profile()) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def token(timed) -> str:
    reply = get(timed, "/l11/budget/token?customer=1")
    assert reply.status == 200
    return reply.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(lab, claims: object) -> str:
    """A token signed with the lab's own key, as the server would sign it."""
    from django.core import signing

    key = (Path(lab.home) / "secret_key").read_text().strip()
    return signing.TimestampSigner(key=key, salt=SALT, fallback_keys=[]).sign_object(claims)


def timings(header: str) -> dict[str, float]:
    return {name.strip(): float(rest.split("dur=")[1])
            for name, _, rest in (m.partition(";") for m in header.split(","))}


def test_budget_answers_the_items_with_a_valid_token_only(lab, timed, token):
    reference = get(timed, "/l11/raw-cached/items").body
    ok = request("GET", timed, BUDGET, headers=bearer(token))
    assert ok.status == 200 and ok.body == reference
    for headers in ({}, {"Authorization": token}, {"Authorization": "Token " + token},
                    bearer(token[:-4] + "AAAA"), bearer(signed(lab, {"customer": 10**9})),
                    bearer(signed(lab, {"customer": "1"})), bearer(signed(lab, [1]))):
        reply = request("GET", timed, BUDGET, headers=headers)
        assert reply.status == 401, headers
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="lab"'
        assert reply.json()["error"].startswith("authentication required")
    assert request("GET", timed, BUDGET, headers=bearer(signed(lab, {"customer": 1}))).status == 200


def test_token_endpoint_refuses_unknown_customers(timed):
    for query in ("", "?customer=", "?customer=x", "?customer=-1", f"?customer={10**9}"):
        assert get(timed, f"/l11/budget/token{query}").status == 404, query


def test_budget_reports_every_stage_and_the_clock(timed, token):
    before = time.perf_counter()
    reply = request("GET", timed, BUDGET, headers=bearer(token))
    after = time.perf_counter()
    t = timings(reply.headers["Server-Timing"])
    assert set(t) == {"auth", "auth-db", "orm", "orm-db", "serialize", "respond", "middleware", "routing"}
    assert all(v >= 0 for v in t.values())
    assert t["auth-db"] <= t["auth"] and t["orm-db"] <= t["orm"]
    assert reply.headers["Lab-Queries"] == "auth=1, orm=1"
    server_in, server_out = (float(v) for v in reply.headers["Lab-Clock"].split())
    # One clock for both processes: the server's readings fall inside the client's.
    assert before < server_in < server_out < after
    # The server's stages follow one another: together they are its whole time (the
    # header rounds each to a microsecond).
    stages_ms = sum(t[k] for k in ("middleware", "routing", "auth", "orm", "serialize", "respond"))
    assert stages_ms == pytest.approx((server_out - server_in) * 1000, abs=0.02)


def test_without_the_stage_clocks_the_view_still_times_itself(lab, token):
    with lab.serve(Profile.preset("tuned").replace(workers=1)) as srv:
        reply = request("GET", srv.url, BUDGET, headers=bearer(token))
    assert reply.status == 200
    assert set(timings(reply.headers["Server-Timing"])) == {"auth", "auth-db", "orm", "orm-db", "serialize",
                                                            "respond"}
    assert "Lab-Clock" not in reply.headers


def test_stage_client_partitions_each_latency(timed, token):
    df = stages.measure(timed, BUDGET, rate=20, samples=40, warmup=0.2, headers=bearer(token))
    assert len(df) == 40 and set(df.status) == {200}
    assert set(df["auth queries"]) == {1} and set(df["ORM queries"]) == {1}
    parts = df[list(stages.STAGES)].sum(axis=1)
    assert (parts - df["total"]).abs().max() < 0.05  # ms: the stages are the whole latency
    assert (df[list(stages.STAGES)] >= 0).all().all()
    summary = stages.summary(df, {"middleware": 1})
    assert list(summary.index[:len(stages.STAGES)]) == list(stages.STAGES)
    assert summary.loc["middleware", "guide (ms)"] == 1
    assert summary.loc["whole request", "guide (ms)"] == 10
    assert summary.loc["whole request", "p99 high (ms)"] == float("inf")  # 40 samples cannot bound a p99


def test_silk_profiles_the_l11_endpoint(lab):
    path = "/l11/raw-cached/items"
    silk.forget(lab, "/l11/")
    with lab.serve(Profile(profiler="silk", cache="django-redis", workers=1)) as srv:
        for _ in range(3):
            assert get(srv.url, path).status == 200
        get(srv.url, "/l01/hello")
    assert silk.requests(lab, path) == 3
    assert silk.requests(lab, "/l01/hello") == 0
    assert silk.forget(lab, "/l11/") == 3
    assert silk.requests(lab, path) == 0


def test_is_profiled_covers_the_profiling_lessons_only(monkeypatch):
    from lessons import config

    monkeypatch.syspath_prepend(str(config.LAB_PROJECT))
    from lab.profiling import is_profiled

    class Req:
        def __init__(self, path: str) -> None:
            self.path = path

    assert is_profiled(Req("/l10/slow-orders")) and is_profiled(Req("/l11/drf/items"))
    assert not is_profiled(Req("/l01/hello")) and not is_profiled(Req("/l1/x"))


def test_summary_counts_a_request_without_an_answer_in_the_whole_request_only():
    import math

    import pandas as pd

    ok = {"status": 200, "total": 2.0, **{s: 0.25 for s in stages.STAGES}, "auth db": 0.1, "ORM db": 0.1}
    df = pd.DataFrame([ok] * 399 + [{"status": 0, "total": 2000.0}])
    s = stages.summary(df, {"middleware": 1})
    assert s.loc["whole request", "p99 (ms)"] == 2.0 and s.loc["whole request", "p99 high (ms)"] == math.inf
    assert s.loc["middleware", "p99 (ms)"] == 0.25 and s.loc["middleware", "p99 high (ms)"] == 0.25


# The checklist's variants of one endpoint ###############################################



def test_l11_variants_are_byte_identical(lab, redis_counted_wsgi, redis_counted_asgi):
    reference = ok(redis_counted_wsgi, "/l11/drf/items")
    items = json.loads(reference)
    assert [item["id"] for item in items] == [row[0] for row in sql(lab, ACTIVE_ITEMS_SQL)]
    assert len(items) == 20 and all(list(item) == ["id", "name", "price"] for item in items)
    assert all(isinstance(item["price"], str) and item["price"].count(".") == 1 for item in items)
    assert b'": ' not in reference and b', "' not in reference  # compact
    for url in (redis_counted_wsgi, redis_counted_asgi):
        for variant in L11_VARIANTS:
            for _ in range(2):  # a miss, then (for the cached ones) a hit
                assert ok(url, f"/l11/{variant}/items") == reference, (url, variant)


@pytest.mark.parametrize(
    ("variant", "queries"),
    [("drf", 1), ("serializer", 1), ("serializer-async", 1), ("ninja", 1), ("ninja-async", 1),
     ("ninja-cached", 0), ("ninja-cached-async", 0), ("raw-cached", 0), ("raw-cached-async", 0)],
)
def test_l11_queries_per_request(redis_counted_wsgi, variant, queries):
    path = f"/l11/{variant}/items"
    ok(redis_counted_wsgi, path)  # warm the cache for the cached variants
    assert per_request(redis_counted_wsgi, path, 3)["queries"] == queries
