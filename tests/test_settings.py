"""The LAB_* settings contract (lab/settings.py, with lab/knobs.py's table and lab/env.py's
parsing): every knob's values, the rules between knobs, and one clear sentence for every
bad value; the database knobs are in test_settings_database.py. Settings are read at
import, so each case executes lab/settings.py afresh (runpy) under a patched environment
(the ``load`` and ``error`` fixtures over ``load_settings``, conftest.py). No server, no
PostgreSQL needed."""

from __future__ import annotations

import re
from pathlib import Path

import django
import pytest
from django.core.exceptions import ImproperlyConfigured
from startproject import DEFAULT_MIDDLEWARE

from helpers import PG_URL
from lessons.profile import Profile, ProfileError

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab_project"
SETTINGS = LAB / "lab" / "settings.py"

BOOLEAN_CHOICES = "0/1, true/false, yes/no, on/off"

MINIMAL_MIDDLEWARE = DEFAULT_MIDDLEWARE[:3]


# Settings ###############################################################################


def test_defaults(load):
    s = load()
    assert s["DEBUG"] is False
    assert s["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]
    assert s["DATABASES"] == {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": LAB / "lab.sqlite3",
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "OPTIONS": {},
        }
    }
    assert s["CACHES"] == {
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    }
    assert s["MIDDLEWARE"] == DEFAULT_MIDDLEWARE
    assert s["SILENCED_SYSTEM_CHECKS"] == []
    assert s["USE_TZ"] is True
    assert s["DEFAULT_AUTO_FIELD"] == "django.db.models.BigAutoField"
    assert s["INSTALLED_APPS"][-1] == "catalog"


def test_secret_key(load):
    assert load(LAB_SECRET_KEY="s3cret")["SECRET_KEY"] == "s3cret"
    generated = load()["SECRET_KEY"]
    assert len(generated) == 50 and generated != load()["SECRET_KEY"]


def test_empty_value_counts_as_unset(load):
    assert load(LAB_DEBUG="", LAB_CACHE=" ")["DEBUG"] is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [(v, True) for v in ("1", "true", "TRUE", "yes", "On")]
    + [(v, False) for v in ("0", "false", "No", "off", "OFF")],
)
def test_booleans(load, value, expected):
    s = load(LAB_DEBUG=value, LAB_CONN_HEALTH_CHECKS=value)
    assert s["DEBUG"] is expected
    assert s["DATABASES"]["default"]["CONN_HEALTH_CHECKS"] is expected


@pytest.mark.parametrize("name", ["LAB_DEBUG", "LAB_CONN_HEALTH_CHECKS", "LAB_DB_POOL",
                                  "LAB_DJ_DB_CONN_POOL"])
def test_bad_boolean(error, name):
    assert error(**{name: "maybe"}) == (
        f"{name}='maybe' is invalid; allowed values: {BOOLEAN_CHOICES}."
    )



REDIS_URL = "redis://127.0.0.1:6390/0"


@pytest.mark.parametrize(
    ("cache", "expected"),
    [
        ("none", {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}),
        (
            "locmem",
            {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "lab"},
        ),
        (
            "redis",
            {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
        ),
        (
            "django-redis",
            {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": REDIS_URL,
                "OPTIONS": {
                    "CLIENT_CLASS": "django_redis.client.DefaultClient",
                    "CONNECTION_POOL_KWARGS": {"max_connections": 50},
                },
            },
        ),
    ],
)
def test_cache(load, cache, expected):
    assert load(LAB_CACHE=cache, LAB_REDIS_URL=REDIS_URL)["CACHES"] == {"default": expected}


def test_bad_cache(error):
    assert error(LAB_CACHE="memcached") == (
        "LAB_CACHE='memcached' is invalid; allowed values: none, locmem, django-redis, redis."
    )
    assert error(LAB_CACHE="django-redis") == (
        "LAB_REDIS_URL is missing but LAB_CACHE='django-redis' needs it; allowed values: "
        "a redis://, rediss:// or unix:// URL such as redis://127.0.0.1:6379/0."
    )
    assert error(LAB_CACHE="redis", LAB_REDIS_URL="http://:pw@h:6379") == (
        "LAB_REDIS_URL='http://:***@h:6379' is invalid; allowed values: "
        "a redis://, rediss:// or unix:// URL such as redis://127.0.0.1:6379/0."
    )


@pytest.mark.parametrize(("parser", "path"), [
    ("python", "redis.connection._RESP3Parser"),
    ("hiredis", "redis.connection._HiredisParser"),
])  # fmt: skip
def test_redis_parser_setting(load, parser, path):
    s = load(LAB_CACHE="django-redis", LAB_REDIS_URL=REDIS_URL, LAB_REDIS_PARSER=parser)
    assert s["CACHES"]["default"]["OPTIONS"]["PARSER_CLASS"] == path
    s = load(LAB_CACHE="redis", LAB_REDIS_URL=REDIS_URL, LAB_REDIS_PARSER=parser)
    assert s["CACHES"]["default"]["OPTIONS"] == {"parser_class": path}
    auto = load(LAB_CACHE="redis", LAB_REDIS_URL=REDIS_URL, LAB_REDIS_PARSER="auto")
    assert "OPTIONS" not in auto["CACHES"]["default"]


def test_cache_delay_setting(load):
    s = load(LAB_CACHE="django-redis", LAB_REDIS_URL=REDIS_URL, LAB_CACHE_DELAY_MS="0.5")
    cache = s["CACHES"]["default"]
    assert (cache["BACKEND"], cache["LAB_DELAY_MS"]) == (
        "lab.slow_cache.DelayedDjangoRedisCache", 0.5)
    s = load(LAB_CACHE="redis", LAB_REDIS_URL=REDIS_URL, LAB_CACHE_DELAY_MS="20")
    assert s["CACHES"]["default"]["BACKEND"] == "lab.slow_cache.DelayedRedisCache"
    s = load(LAB_CACHE="redis", LAB_REDIS_URL=REDIS_URL, LAB_CACHE_DELAY_MS="0")
    assert s["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


@pytest.mark.parametrize(("env", "message"), [
    ({"LAB_CACHE": "redis", "LAB_REDIS_PARSER": "c"},
     "LAB_REDIS_PARSER='c' is invalid; allowed values: auto, python, hiredis."),
    ({"LAB_CACHE": "locmem", "LAB_REDIS_PARSER": "python"},
     "LAB_REDIS_PARSER='python' is invalid (it needs LAB_CACHE=django-redis or redis); "
     "allowed values: auto."),
    ({"LAB_CACHE": "redis", "LAB_CACHE_DELAY_MS": "-1"},
     "LAB_CACHE_DELAY_MS='-1' is invalid; allowed values: a number of milliseconds >= 0, "
     "e.g. 1 or 0.5."),
    ({"LAB_CACHE_DELAY_MS": "5"},
     "LAB_CACHE_DELAY_MS='5' is invalid (it needs LAB_CACHE=django-redis or redis); "
     "allowed values: 0."),
])  # fmt: skip
def test_bad_cache_knobs(load, env, message):
    with pytest.raises(ImproperlyConfigured) as info:
        load(LAB_REDIS_URL=REDIS_URL, **env)
    assert str(info.value) == message


def test_default_middleware_is_what_startproject_generates(load):
    template = Path(django.__file__).parent / "conf/project_template/project_name"
    source = (template / "settings.py-tpl").read_text()
    block = re.search(r"MIDDLEWARE = \[(.*?)\]", source, re.S)
    assert block is not None
    assert re.findall(r"'([\w.]+)'", block.group(1)) == DEFAULT_MIDDLEWARE
    assert load(LAB_MIDDLEWARE="default")["MIDDLEWARE"] == DEFAULT_MIDDLEWARE


@pytest.mark.parametrize(
    ("value", "middleware", "silenced"),
    [
        ("minimal", MINIMAL_MIDDLEWARE, ["admin.E408", "admin.E409"]),
        ("none", [], ["admin.E408", "admin.E409", "admin.E410"]),
        (
            " django.middleware.common.CommonMiddleware , a.b.C ",
            ["django.middleware.common.CommonMiddleware", "a.b.C"],
            ["admin.E408", "admin.E409", "admin.E410"],
        ),
        (
            ",".join(DEFAULT_MIDDLEWARE[:5]),
            DEFAULT_MIDDLEWARE[:5],
            ["admin.E409"],
        ),
    ],
)
def test_middleware(load, value, middleware, silenced):
    s = load(LAB_MIDDLEWARE=value)
    assert s["MIDDLEWARE"] == middleware
    assert s["SILENCED_SYSTEM_CHECKS"] == silenced


@pytest.mark.parametrize("value", ["fast", "a.b.C,", "a.b.C;d.e.F", "a.b.C, bogus"])
def test_bad_middleware(error, value):
    assert error(LAB_MIDDLEWARE=value) == (
        f"LAB_MIDDLEWARE={value.strip()!r} is invalid; allowed values: "
        "default, minimal, none, or a comma-separated list of dotted paths."
    )


def test_settings_read_the_environment_once_and_only_lab_variables():
    source = SETTINGS.read_text()
    assert source.count("os.environ") == 1 and "getenv" not in source
    assert 'startswith("LAB_")' in source


# Profilers ##############################################################################


def test_debug_toolbar_needs_debug(load):
    with pytest.raises(ProfileError, match="^The debug toolbar only runs with DEBUG on"):
        Profile(profiler="debug-toolbar")
    with pytest.raises(ImproperlyConfigured) as caught:
        load(LAB_PROFILER="debug-toolbar")
    assert str(caught.value) == (
        "LAB_PROFILER='debug-toolbar' is invalid (the debug toolbar only runs with DEBUG, "
        "so it needs LAB_DEBUG=1); allowed values: none, silk, pyinstrument."
    )
    s = load(LAB_PROFILER="debug-toolbar", LAB_DEBUG="1")
    assert s["MIDDLEWARE"][0] == "debug_toolbar.middleware.DebugToolbarMiddleware"
    assert s["INSTALLED_APPS"][-1] == "debug_toolbar" and s["INTERNAL_IPS"] == ["127.0.0.1"]


def test_profiler_settings(load, tmp_path):
    s = load()
    assert s["LAB_PROFILER"] == "none" and "silk" not in s["INSTALLED_APPS"]
    s = load(LAB_PROFILER="silk")
    assert s["MIDDLEWARE"][0] == "silk.middleware.SilkyMiddleware" and "silk" in s["INSTALLED_APPS"]
    assert s["SILKY_PYTHON_PROFILER"] and not s["SILKY_PYTHON_PROFILER_BINARY"]
    s = load(LAB_PROFILER="silk", LAB_PROFILE_DIR=str(tmp_path))
    assert s["SILKY_PYTHON_PROFILER_BINARY"] and s["SILKY_PYTHON_PROFILER_RESULT_PATH"] == str(tmp_path)
    s = load(LAB_PROFILER="pyinstrument", LAB_PROFILE_DIR=str(tmp_path))
    assert s["MIDDLEWARE"][0] == "pyinstrument.middleware.ProfilerMiddleware"
    assert s["PYINSTRUMENT_PROFILE_DIR"] == str(tmp_path)
    # Ignored by the profilers that write nothing, so a launcher may always pass it.
    assert load(LAB_PROFILE_DIR=str(tmp_path / "missing"))["LAB_PROFILE_DIR"]
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
            load(**env)
        assert str(caught.value) == message


# Lab middleware and the upstream stand-in ################################################


def test_instrument_setting(load):
    assert load()["LAB_INSTRUMENT"] is False
    assert load(LAB_INSTRUMENT="1")["LAB_INSTRUMENT"] is True
    assert load(LAB_INSTRUMENT="off")["LAB_INSTRUMENT"] is False
    with pytest.raises(ImproperlyConfigured) as info:
        load(LAB_INSTRUMENT="2")
    assert str(info.value) == (
        "LAB_INSTRUMENT='2' is invalid; allowed values: 0/1, true/false, yes/no, on/off."
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8001", "http://127.0.0.1:8001"),
        ("http://127.0.0.1:8001/", "http://127.0.0.1:8001"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
    ],
)
def test_upstream_url_setting(load, value, expected):
    assert load()["LAB_UPSTREAM_URL"] is None
    assert load(LAB_UPSTREAM_URL=value)["LAB_UPSTREAM_URL"] == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("127.0.0.1:8001", ""),
        ("ftp://h/x", ""),
        ("http://", ""),
        ("http://h:port", " (the port is not a number)"),
        ("http://h/?x=1", " (query strings and fragments are not supported)"),
    ],
)
def test_bad_upstream_url(load, value, why):
    with pytest.raises(ImproperlyConfigured) as info:
        load(LAB_UPSTREAM_URL=value)
    assert str(info.value) == (
        f"LAB_UPSTREAM_URL={value!r} is invalid{why}; allowed values: "
        "an http:// or https:// URL such as http://127.0.0.1:8001."
    )


# The knob table (lab/knobs.py) ##########################################################

# For each rule between knobs, variables that break it and nothing else (PostgreSQL
# where the rule is not about the database).
BREAKING = {
    ("db_pool", "pooling needs PostgreSQL"): {"LAB_DB_POOL": "1"},
    ("conn_max_age", "Django's connection pool"): {"LAB_DATABASE_URL": PG_URL, "LAB_DB_POOL": "1",
                                                   "LAB_CONN_MAX_AGE": "60"},
    ("db_pool_size", "it needs LAB_DB_POOL=1"): {"LAB_DB_POOL_SIZE": "4"},
    ("db_pool_timeout", "it needs LAB_DB_POOL=1"): {"LAB_DB_POOL_TIMEOUT": "4"},
    ("dj_db_conn_pool", "the guide's pool is set up"): {"LAB_DJ_DB_CONN_POOL": "1"},
    ("dj_db_conn_pool", "one pool at a time"): {"LAB_DATABASE_URL": PG_URL, "LAB_DJ_DB_CONN_POOL": "1",
                                                "LAB_DB_POOL": "1"},
    ("conn_max_age", "the guide's pool (LAB_DJ"): {"LAB_DATABASE_URL": PG_URL, "LAB_DJ_DB_CONN_POOL": "1",
                                                   "LAB_CONN_MAX_AGE": "none"},
    ("statement_timeout_ms", "statement_timeout is"): {"LAB_STATEMENT_TIMEOUT_MS": "5"},
    ("profiler", "the debug toolbar only runs"): {"LAB_PROFILER": "debug-toolbar"},
    ("redis_parser", "it needs LAB_CACHE="): {"LAB_REDIS_PARSER": "hiredis"},
    ("cache_delay_ms", "it needs LAB_CACHE="): {"LAB_CACHE_DELAY_MS": "1"},
}


def test_every_rule_between_knobs_stops_the_server_with_its_sentence(error):
    from lab_project.lab import knobs

    assert len(BREAKING) == len(knobs.RULES)
    for rule in knobs.RULES:
        (env,) = [env for (knob, why), env in BREAKING.items() if knob == rule.knob and why in rule.why]
        value = env[rule.variable]
        assert error(**env) == (
            f"{rule.variable}={value!r} is invalid ({rule.why}); allowed values: {rule.allowed}."
        )


def test_settings_take_every_name_of_the_knob_table(load):
    from lab_project.lab import knobs

    for name, stack in knobs.MIDDLEWARE_PRESETS.items():
        assert load(LAB_MIDDLEWARE=name.upper())["MIDDLEWARE"] == list(stack)
    for name, cache in knobs.CACHES.items():
        assert load(LAB_CACHE=name, LAB_REDIS_URL=REDIS_URL)["CACHES"]["default"]["BACKEND"] == cache.backend
    for name in knobs.PROFILERS:
        if not knobs.PROFILERS[name].writes_files:  # the others import lab.profiling
            assert load(LAB_PROFILER=name, LAB_DEBUG="1")["LAB_PROFILER"] == name
