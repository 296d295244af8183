"""The generated configuration (lessons.config_for_machine) on synthetic records: every
choice follows its notebook's numbers, cites them, and names the notebook whose record is
missing.  Pure: nothing is started."""

from __future__ import annotations

import pytest

from lessons import config_for_machine as cfm
from lessons.config_for_machine import generate
from lessons.profile import server_cores

FORMULA = 2 * server_cores() + 1


def records(*, wsgi: float = 2100, uvicorn: float = 600, best_sync: int = 4, best_async: int = 2,
            stack: dict | None = None, cache: dict | None = None, policy: dict | None = None,
            waits: dict | None = None, leak: dict | None = None) -> dict:
    return {
        "01_asgi_vs_wsgi": {"rps": {"sync view": {"gunicorn-sync": wsgi, "uvicorn": uvicorn},
                                    "async view": {"gunicorn-sync": 900, "uvicorn": 1200}}},
        "02_production_server": {"best workers": {"sync": best_sync, "async": best_async},
                                 "sync sweep rps": {"1": 1000, "2": 1800, "4": 2300, "3": 2200}},
        "05_middleware": {"stack rps": stack or {
            "gunicorn-sync": {"default": 1300, "minimal": 1700, "none": 2000},
            "uvicorn": {"default": 250, "minimal": 400, "none": 600}}},
        "07_caching": {"cache rps": cache or {"none": 300, "locmem": 2000, "django-redis": 1500,
                                              "redis": 1400}},
        "08_db_connections": {
            "policy rps": policy or {"gunicorn-sync": {"CONN_MAX_AGE=0": 200, "CONN_MAX_AGE=60": 900, "pool": 850},
                                     "uvicorn": {"CONN_MAX_AGE=0": 150, "CONN_MAX_AGE=60": 400, "pool": 380}},
            "pool waits ms": waits or {"pool size 2": [0.1, 5.0], "pool size 4": [0.1, 0.4], "pool size 8": [0.1]},
            "connections after requests": leak or {"uvicorn, CONN_MAX_AGE=60": {"50": 7, "100": 37}},
        },
    }


def test_everything_measured_wsgi():
    cfg = generate(records())
    p = cfg.profile
    assert (p.server, p.workers, p.middleware, p.cache, p.conn_max_age, p.db_pool) == \
        ("gunicorn-sync", 4, "minimal", "django-redis", 60, False)
    assert cfg.missing == []
    assert all(c.measured for c in cfg.choices)
    assert [c.knob for c in cfg.choices] == ["interface", "workers", "middleware", "cache", "connections",
                                             "pool size"]
    assert "2,100 req/s under gunicorn's sync worker and 600 under uvicorn (3.50x)" in cfg.choice("interface").because
    assert cfg.choice("workers").because == (
        f"notebook 02's choice of sync workers on the {server_cores()} core{'s' if server_cores() > 1 else ''} "
        "the lab gives the server: the fewest within 5% of the best throughput it measured (its sweep on a "
        "view that waits 5 ms, workers: req/s: 1: 1,000, 2: 1,800, 3: 2,200, 4: 2,300)")
    assert "1,700 req/s, startproject's 1,300 (+30.8%), none at all 2,000" in cfg.choice("middleware").because
    assert "one copy per worker process" in cfg.choice("cache").because
    assert cfg.choice("pool size").value == "-"
    assert "--workers 4 --worker-class sync" in cfg.command()
    assert "CONN_MAX_AGE" in cfg.settings() and "django_redis.cache.RedisCache" in cfg.settings()
    assert set(cfg.table().columns) == {"value", "from", "because"}


def test_asgi_leaves_out_the_leaking_policy_and_sizes_the_pool():
    cfg = generate(records(wsgi=500, uvicorn=900))
    p = cfg.profile
    assert (p.server, p.workers, p.conn_max_age, p.db_pool, p.db_pool_size) == ("gunicorn-uvicorn", 2, 0, True, 4)
    assert "left out CONN_MAX_AGE=60: uvicorn, CONN_MAX_AGE=60 held 7 connections after 50 requests and 37 " \
           "after 100" in cfg.choice("connections").because
    assert "4 per worker, the smallest whose worst wait stayed under 1 ms" in cfg.choice("pool size").because
    assert "uvicorn_worker.UvicornWorker" in cfg.command()


def test_asgi_without_a_leak_keeps_the_fastest_policy():
    cfg = generate(records(wsgi=500, uvicorn=900, leak={"uvicorn, CONN_MAX_AGE=60": {"50": 3, "100": 3}}))
    assert cfg.profile.conn_max_age == 60 and not cfg.profile.db_pool


def test_small_gains_keep_the_defaults():
    cfg = generate(records(stack={"gunicorn-sync": {"default": 1000, "minimal": 1020, "none": 1100}},
                           cache={"none": 1000, "django-redis": 1050, "redis": 1080, "locmem": 3000},
                           waits={"pool size 2": [3.0], "pool size 4": [2.0]},
                           policy={"gunicorn-sync": {"CONN_MAX_AGE=0": 100, "CONN_MAX_AGE=60": 200, "pool": 300}}))
    p = cfg.profile
    assert (p.middleware, p.cache, p.db_pool, p.db_pool_size) == ("default", "none", True, 1)
    assert "(+2.0%), none at all 1,100: less than 5% more, not worth a change" in cfg.choice("middleware").because
    assert "not worth a network round trip" in cfg.choice("cache").because
    # a sync worker serves one request at a time: 08's bursts (at a uvicorn worker) do not size its pool
    assert cfg.choice("pool size").because.startswith("1 per worker: gunicorn's sync worker serves one request")
    assert '"pool": {"min_size": 1, "max_size": 1}' in cfg.settings()


def test_asgi_pool_without_a_small_enough_size_takes_the_largest():
    cfg = generate(records(wsgi=500, uvicorn=900, waits={"pool size 2": [3.0], "pool size 4": [2.0]},
                           policy={"uvicorn": {"CONN_MAX_AGE=0": 100, "CONN_MAX_AGE=60": 200, "pool": 300}}))
    assert (cfg.profile.db_pool, cfg.profile.db_pool_size) == (True, 4)
    assert "none stayed under 1 ms: the largest measured" in cfg.choice("pool size").because


def test_missing_records_are_named_and_defaults_stated():
    cfg = generate({})
    assert cfg.missing == ["01_asgi_vs_wsgi", "02_production_server", "05_middleware", "07_caching",
                           "08_db_connections"]
    assert not any(c.measured for c in cfg.choices)
    p = cfg.profile
    assert (p.server, p.workers, p.middleware, p.cache, p.conn_max_age) == \
        ("gunicorn-sync", FORMULA, "minimal", "django-redis", 60)
    for c in cfg.choices:
        if c.knob != "pool size":
            assert f"run notebook {c.notebook[:2]} to decide" in c.because, c
    assert all(row.endswith("(missing)") for row in cfg.table()["from"])


@pytest.mark.parametrize("missing", ["01_asgi_vs_wsgi", "02_production_server", "05_middleware",
                                     "07_caching", "08_db_connections"])
def test_one_missing_record(missing):
    r = records()
    del r[missing]
    cfg = generate(r)
    assert cfg.missing == [missing]
    assert {c.knob for c in cfg.choices if not c.measured} == {k for k, nb in cfm.NOTEBOOKS.items()
                                                              if nb == missing}
    assert all(f"notebook {missing[:2]} has no record" in c.because for c in cfg.choices
               if not c.measured and c.knob != "pool size")


def test_malformed_values_count_as_missing():
    r = records()
    r["02_production_server"]["best workers"] = {"sync": "four"}
    r["01_asgi_vs_wsgi"]["rps"]["sync view"]["uvicorn"] = None
    cfg = generate(r)
    assert cfg.missing == ["01_asgi_vs_wsgi", "02_production_server"]
    assert cfg.profile.workers == FORMULA
