"""The lab's knob table: every named value a knob takes, and the rules between knobs.

One module, read by both sides of the ``LAB_*`` contract: ``lab/settings.py`` (in every
server worker) turns the variables into Django settings with it, and ``lessons.profile``
(in the notebook's kernel, as ``lab_project.lab.knobs``) validates a ``Profile`` and
writes its settings with it. A knob's variable is ``LAB_`` and its name in capitals
(``db_pool`` is ``LAB_DB_POOL``). It imports nothing but the standard library, so the
project still never imports ``lessons`` and a server worker pays nothing for it.

Adding a knob value (a middleware preset, a cache, a profiler) is one entry here; adding
a rule between knobs is one ``Rule``, which both sides then enforce.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Booleans ###############################################################################

BOOLEANS = {
    "1": True, "true": True, "yes": True, "on": True,
    "0": False, "false": False, "no": False, "off": False,
}  # fmt: skip
BOOLEAN_CHOICES = "0/1, true/false, yes/no, on/off"

# Databases ##############################################################################

DATABASES = ("postgres", "sqlite")  # the Profile's names; settings.py reads LAB_DATABASE_URL

# Middleware #############################################################################

SECURITY = "django.middleware.security.SecurityMiddleware"
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"
CSRF = "django.middleware.csrf.CsrfViewMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
MESSAGE = "django.contrib.messages.middleware.MessageMiddleware"
XFRAME = "django.middleware.clickjacking.XFrameOptionsMiddleware"

MIDDLEWARE_PRESETS: dict[str, tuple[str, ...]] = {
    # Exactly what `django-admin startproject` generates in Django 6.1.
    "default": (SECURITY, SESSION, COMMON, CSRF, AUTH, MESSAGE, XFRAME),
    # The guide's trimmed stack.
    "minimal": (SECURITY, SESSION, COMMON),
    "none": (),
}
# Besides a preset, the middleware knob takes a comma-separated list of these.
DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", re.ASCII)
MIDDLEWARE_CHOICES = f"{', '.join(MIDDLEWARE_PRESETS)}, or a comma-separated list of dotted paths"

# Caches #################################################################################


@dataclass(frozen=True)
class Cache:
    backend: str
    location: str | None = None  # LOCATION; a cache reached over the network has LAB_REDIS_URL
    network: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # OPTIONS
    parser_option: str = ""  # the OPTIONS key LAB_REDIS_PARSER's class goes to
    # The lab's variant that sleeps LAB_CACHE_DELAY_MS in every call (lab/slow_cache.py),
    # to simulate a Redis on another host (the lab's Valkey is on loopback, ~0.1 ms away).
    delayed: str | None = None


CACHES: dict[str, Cache] = {
    # DummyCache: every cache call is a miss, so "no cache" is measured honestly.
    "none": Cache("django.core.cache.backends.dummy.DummyCache"),
    # Per process: N workers hold N independent caches.
    "locmem": Cache("django.core.cache.backends.locmem.LocMemCache", location="lab"),
    "django-redis": Cache(
        "django_redis.cache.RedisCache",
        network=True,
        options={
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            # No PARSER_CLASS by default: the guide's "redis.connection.HiredisParser" is
            # an ImportError on redis-py >= 5, which picks hiredis up by itself.
            "CONNECTION_POOL_KWARGS": {"max_connections": 50},
        },
        parser_option="PARSER_CLASS",
        delayed="lab.slow_cache.DelayedDjangoRedisCache",
    ),
    # Django's RedisCacheClient takes the parser's dotted path as parser_class.
    "redis": Cache(
        "django.core.cache.backends.redis.RedisCache",
        network=True,
        parser_option="parser_class",
        delayed="lab.slow_cache.DelayedRedisCache",
    ),
}
NETWORK_CACHES = tuple(name for name, cache in CACHES.items() if cache.network)

# LAB_REDIS_PARSER: which RESP parser redis-py uses, for a measured comparison. "auto" is
# redis-py's own choice (hiredis when installed). The classes are redis-py 8's private
# names: the guide's public "redis.connection.HiredisParser" no longer exists (an
# ImportError at the first cache call). redis-py 8 speaks RESP3 by default, so the
# pure-Python parser is the RESP3 one.
REDIS_PARSERS: dict[str, str | None] = {
    "auto": None,
    "python": "redis.connection._RESP3Parser",
    "hiredis": "redis.connection._HiredisParser",
}

# Profilers ##############################################################################


@dataclass(frozen=True)
class Profiler:
    middleware: str | None  # put first in MIDDLEWARE, so that it sees the whole request
    app: str | None = None  # appended to INSTALLED_APPS
    writes_files: bool = False  # into LAB_PROFILE_DIR (silk's .prof files, pyinstrument's HTML)
    needs_debug: bool = False  # it only runs while DEBUG is on


# LAB_PROFILER: lessons 10-11's profilers, one at a time. Nothing of a profiler is
# imported or installed unless it is chosen, so "none" measures the project without any.
PROFILERS: dict[str, Profiler] = {
    "none": Profiler(None),
    "silk": Profiler("silk.middleware.SilkyMiddleware", "silk", writes_files=True),
    "pyinstrument": Profiler("pyinstrument.middleware.ProfilerMiddleware", writes_files=True),
    # Its default SHOW_TOOLBAR_CALLBACK shows it only while DEBUG is on, and DEBUG is part
    # of what it costs: a toolbar that never runs is refused rather than measured.
    "debug-toolbar": Profiler("debug_toolbar.middleware.DebugToolbarMiddleware", "debug_toolbar",
                              needs_debug=True),
}

# Rules between knobs ####################################################################


@dataclass(frozen=True)
class Rule:
    """One rule between knobs. When ``broken`` holds for the knobs' values, ``knob`` is
    refused: settings.py says ``LAB_<KNOB>=<value> is invalid (<why>); allowed values:
    <allowed>.``, a ``Profile`` says ``message`` (None: a variable the Profile has no
    knob for, only settings.py checks it)."""

    knob: str
    broken: Callable[[Mapping[str, Any]], bool]
    why: str
    allowed: str
    message: str | None

    @property
    def variable(self) -> str:
        return "LAB_" + self.knob.upper()


def _postgres(k: Mapping[str, Any]) -> bool:
    return k["database"] == "postgres"


RULES: tuple[Rule, ...] = (
    Rule("db_pool", lambda k: k["db_pool"] and not _postgres(k),
         "pooling needs PostgreSQL", "0",
         "db_pool needs database='postgres': SQLite has no pool in Django."),
    # Django itself refuses this at the first query; the lab says it at start-up instead.
    Rule("conn_max_age", lambda k: k["db_pool"] and k["conn_max_age"] != 0,
         "Django's connection pool (LAB_DB_POOL=1) requires CONN_MAX_AGE=0", "0",
         "Django's pool requires conn_max_age=0 (the pool keeps the connections): "
         "set conn_max_age=0 or db_pool=False."),
    Rule("db_pool_size", lambda k: k["db_pool_size"] is not None and not k["db_pool"],
         "it needs LAB_DB_POOL=1", "unset",
         "db_pool_size needs db_pool=True: set db_pool=True or db_pool_size=None."),
    Rule("db_pool_timeout", lambda k: k["db_pool_timeout"] is not None and not k["db_pool"],
         "it needs LAB_DB_POOL=1", "unset", None),
    Rule("dj_db_conn_pool", lambda k: k["dj_db_conn_pool"] and not _postgres(k),
         "the guide's pool is set up for PostgreSQL", "0",
         "dj_db_conn_pool needs database='postgres': the guide sets it up for PostgreSQL."),
    Rule("dj_db_conn_pool", lambda k: k["dj_db_conn_pool"] and k["db_pool"],
         "LAB_DB_POOL=1 already pools: one pool at a time", "0",
         "dj_db_conn_pool and db_pool are two pools: choose one."),
    # The package accepts it, but then Django never closes the connection between
    # requests, so it never goes back to the pool: the guide's snippet leaves
    # CONN_MAX_AGE at its default, 0.
    Rule("conn_max_age", lambda k: k["dj_db_conn_pool"] and k["conn_max_age"] != 0,
         "the guide's pool (LAB_DJ_DB_CONN_POOL=1) hands connections back to its pool only "
         "when Django closes them, which CONN_MAX_AGE=0 does after each request", "0",
         "dj_db_conn_pool needs conn_max_age=0: Django hands the connection back to the "
         "pool only when it closes it after a request."),
    Rule("statement_timeout_ms", lambda k: k["statement_timeout_ms"] != 0 and not _postgres(k),
         "statement_timeout is a PostgreSQL setting, not SQLite", "0",
         "statement_timeout_ms needs database='postgres': SQLite has no statement timeout."),
    Rule("profiler", lambda k: PROFILERS[k["profiler"]].needs_debug and not k["debug"],
         "the debug toolbar only runs with DEBUG, so it needs LAB_DEBUG=1",
         ", ".join(name for name, p in PROFILERS.items() if not p.needs_debug),
         "The debug toolbar only runs with DEBUG on: set debug=True or pick another profiler."),
    # Both only mean something for a cache reached over the network.
    Rule("redis_parser", lambda k: k["redis_parser"] != "auto" and k["cache"] not in NETWORK_CACHES,
         f"it needs LAB_CACHE={' or '.join(NETWORK_CACHES)}", "auto", None),
    Rule("cache_delay_ms", lambda k: k["cache_delay_ms"] != 0 and k["cache"] not in NETWORK_CACHES,
         f"it needs LAB_CACHE={' or '.join(NETWORK_CACHES)}", "0", None),
)


def broken_rules(values: Mapping[str, Any], *, profile: bool = False) -> list[Rule]:
    """The rules ``values`` (knob name -> value) break, in the table's order; with
    ``profile``, only those a ``Profile`` has every knob for."""
    return [r for r in RULES if (r.message or not profile) and r.broken(values)]
