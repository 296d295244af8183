"""Profile: knobs validated with one clear sentence, variants, the LAB_* rendering."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from startproject import DEFAULT_MIDDLEWARE

from lab_project.lab import knobs
from lessons.profile import PRESETS, SERVER_KINDS, Profile, ProfileError


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"server": "apache"}, "Unknown server kind 'apache': use one of gunicorn-sync"),
        ({"workers": 0}, "workers must be a whole number >= 1, not 0."),
        ({"workers": "2"}, "workers must be a whole number >= 1, not '2'."),
        ({"threads": 4}, "threads=4 only applies to gunicorn-gthread, granian-wsgi, uwsgi"),
        ({"server": "daphne", "workers": 2}, "daphne runs a single process"),
        ({"middleware": "sessions please"}, "Bad middleware 'sessions please'"),
        ({"cache": "memcached"}, "Unknown cache 'memcached': use one of none, locmem, django-redis, redis."),
        ({"database": "mysql"}, "Unknown database 'mysql'"),
        ({"conn_max_age": -1}, "conn_max_age must be a whole number >= 0"),
        ({"db_pool": True, "conn_max_age": 60}, "Django's pool requires conn_max_age=0"),
        ({"db_pool": True, "database": "sqlite"}, "db_pool needs database='postgres'"),
        ({"db_pool": "yes"}, "db_pool must be True or False, not 'yes'."),
        ({"extra_env": (("DEBUG", "1"),)}, "must start with LAB_"),
        ({"profiler": "cprofile"}, "Unknown profiler 'cprofile': use one of none, silk, pyinstrument, debug-toolbar."),
        ({"profiler": "debug-toolbar"}, "The debug toolbar only runs with DEBUG on: set debug=True"),
        ({"server": "daphne", "threads": 2}, "threads=2 only applies to gunicorn-gthread"),
        ({"middleware": ""}, "Bad middleware '': use 'default', 'minimal', 'none' or a comma-separated"),
    ],
)
def test_bad_knobs_get_one_clear_sentence(knobs: dict, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        Profile(**knobs)
    text = str(caught.value)
    assert message in text
    assert text.count("\n") == 0 and text.endswith(".")


def test_replace_gives_a_variant_and_rejects_unknown_knobs() -> None:
    base = Profile()
    variant = base.replace(server="uvicorn", middleware="none")
    assert (variant.server, variant.middleware, base.server) == ("uvicorn", "none", "gunicorn-sync")
    assert variant.interface == "asgi" and base.interface == "wsgi"
    with pytest.raises(ProfileError, match="Unknown knob 'colour': known knobs are server, workers"):
        base.replace(colour="red")


def test_env_renders_the_lab_contract() -> None:
    p = Profile(middleware="minimal", cache="django-redis", db_pool=True, db_pool_size=8,
                conn_health_checks=True, statement_timeout_ms=250, extra_env=(("LAB_UPSTREAM_URL", "http://x"),))
    assert p.env() == {
        "LAB_MIDDLEWARE": "minimal", "LAB_CACHE": "django-redis", "LAB_CONN_MAX_AGE": "0",
        "LAB_DB_POOL": "1", "LAB_DB_POOL_SIZE": "8", "LAB_CONN_HEALTH_CHECKS": "1",
        "LAB_STATEMENT_TIMEOUT_MS": "250", "LAB_DEBUG": "0", "LAB_INSTRUMENT": "0", "LAB_PROFILER": "none", "LAB_UPSTREAM_URL": "http://x",
    }
    assert Profile(profiler="silk").env()["LAB_PROFILER"] == "silk"
    assert Profile(profiler="debug-toolbar", debug=True).env()["LAB_PROFILER"] == "debug-toolbar"
    assert Profile(conn_max_age=None).env()["LAB_CONN_MAX_AGE"] == "none"


def test_presets_are_valid_and_named() -> None:
    assert set(PRESETS) == {"naive", "guide", "tuned"}
    naive, guide = Profile.preset("naive"), Profile.preset("guide")
    assert naive.middleware == "default" and naive.conn_max_age == 0 and naive.cache == "none"
    assert guide.middleware == "minimal" and guide.conn_max_age == 60 and guide.conn_health_checks
    assert guide.server == "gunicorn-uvicorn"  # the guide's UvicornWorker, current package
    with pytest.raises(ProfileError, match="Unknown preset 'fast'"):
        Profile.preset("fast")


def test_knobs_parse_from_text_as_the_cli_gives_them() -> None:
    p = Profile()
    assert p.with_knob("workers", "3").workers == 3
    assert p.with_knob("db_pool", "on").db_pool is True
    assert p.with_knob("conn_max_age", "none").conn_max_age is None
    assert p.with_knob("profiler", "pyinstrument").profiler == "pyinstrument"
    assert p.with_knob("server_args", "--max-requests 100").server_args == ("--max-requests", "100")
    with pytest.raises(ProfileError, match="workers must be a whole number, not 'many'."):
        p.with_knob("workers", "many")
    with pytest.raises(ProfileError, match="debug must be true or false"):
        p.with_knob("debug", "maybe")


def test_every_server_kind_has_a_launcher() -> None:
    from lessons.server import LabServer

    for name, kind in SERVER_KINDS.items():
        assert kind.interface in ("wsgi", "asgi") and Profile(server=name).interface == kind.interface
        line = LabServer(Profile(server=name)).command_line("0.0.0.0:8000")
        assert "8000" in line and "127.0.0.1" not in line, (name, line)


def test_the_server_registry_decides_threads_and_workers() -> None:
    threaded = [name for name, kind in SERVER_KINDS.items() if kind.threads]
    assert threaded == ["gunicorn-gthread", "granian-wsgi", "uwsgi"]
    for name in threaded:
        assert Profile(server=name, threads=4).threads == 4
    assert [name for name, kind in SERVER_KINDS.items() if kind.max_workers] == ["daphne"]
    # Each kind's package is pinned (the machine facts record its version from there).
    root = Path(__file__).resolve().parent.parent
    pinned = re.findall(r"^([\w-]+)(?:\[[\w,]+\])?==", (root / "requirements.txt").read_text(), re.M)
    assert {kind.package for kind in SERVER_KINDS.values()} <= set(pinned)
    # The README lists every kind the registry has.
    readme = (root / "README.md").read_text()
    listed = re.search(r"`server` \((.*?)\), `workers`", readme, re.S)
    assert listed is not None
    assert set(re.findall(r"`([\w-]+)`", listed.group(1))) == set(SERVER_KINDS)


def test_every_rule_between_knobs_gives_its_sentence() -> None:
    """Each rule of the knob table a Profile can break, broken on its own."""
    breaking = {
        "db_pool needs database='postgres'": {"db_pool": True, "database": "sqlite"},
        "Django's pool requires conn_max_age=0": {"db_pool": True, "conn_max_age": None},
        "db_pool_size needs db_pool=True: set db_pool=True or db_pool_size=None.": {"db_pool_size": 4},
        "dj_db_conn_pool needs database='postgres'": {"dj_db_conn_pool": True, "database": "sqlite"},
        "dj_db_conn_pool and db_pool are two pools": {"dj_db_conn_pool": True, "db_pool": True},
        "dj_db_conn_pool needs conn_max_age=0": {"dj_db_conn_pool": True, "conn_max_age": 60},
        "statement_timeout_ms needs database='postgres'": {"statement_timeout_ms": 5, "database": "sqlite"},
        "The debug toolbar only runs with DEBUG on": {"profiler": "debug-toolbar"},
    }
    for message, knobs_ in breaking.items():
        with pytest.raises(ProfileError, match=re.escape(message)):
            Profile(**knobs_)
    assert len(breaking) == len([r for r in knobs.RULES if r.message])


def test_middleware_stack_and_settings_snippet() -> None:
    assert Profile(middleware="default").middleware_stack == DEFAULT_MIDDLEWARE
    assert Profile(middleware="minimal").middleware_stack == DEFAULT_MIDDLEWARE[:3]
    assert Profile(middleware=" a.b.C , d.E ").middleware_stack == ["a.b.C", "d.E"]
    assert "MIDDLEWARE = []" in Profile(middleware="none").settings_snippet()
    tuned = Profile.preset("tuned")
    assert tuned.middleware_stack == [DEFAULT_MIDDLEWARE[0], DEFAULT_MIDDLEWARE[2]]
    snippet = tuned.settings_snippet()
    assert '"CONN_MAX_AGE": 600,' in snippet and '"options": "-c statement_timeout=1000"' in snippet
    assert 'CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://' in snippet
    # The lab's "no cache" is DummyCache (Django's default would be a LocMemCache).
    assert "dummy.DummyCache" in Profile().settings_snippet()


def test_the_widget_panel_offers_what_the_server_kind_takes() -> None:
    from lessons.widgets import panel

    p = panel(Profile(server="gunicorn-gthread", workers=3, threads=4))
    assert not p.controls["threads"].disabled and p.profile.threads == 4
    p.controls["server"].value = "daphne"  # one process, no threads
    assert (p.controls["workers"].max, p.controls["threads"].disabled) == (1, True)
    assert (p.profile.workers, p.profile.threads) == (1, 1)
    p.controls["server"].value = "uwsgi"
    assert p.controls["workers"].max > 1 and not p.controls["threads"].disabled
