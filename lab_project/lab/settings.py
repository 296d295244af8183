"""
Settings for the Django p99 lab project.

Every knob a lesson flips (database, pool, cache, middleware, debug...) arrives as a
``LAB_*`` environment variable, and this module is the only place that reads them, once,
into ``_ENV``. A server's behaviour is therefore fully described by its environment,
which is what lets a notebook start the same project under many configurations.

Values are parsed strictly: a typo must stop the server with one clear sentence, not
silently measure a different configuration than the one the learner asked for.

This module runs in every server worker, so it imports nothing heavy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# The one read of the environment. Empty values count as unset, so a launcher can
# blank a variable out instead of deleting it.
_ENV: dict[str, str] = {
    name: value.strip()
    for name, value in os.environ.items()
    if name.startswith("LAB_") and value.strip()
}

_BOOLEANS = {
    "1": True, "true": True, "yes": True, "on": True,
    "0": False, "false": False, "no": False, "off": False,
}  # fmt: skip
_BOOLEAN_CHOICES = "0/1, true/false, yes/no, on/off"
_UINT = re.compile(r"[0-9]+")
_UFLOAT = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", re.ASCII)
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _invalid(name: str, value: str, allowed: str, why: str = "") -> ImproperlyConfigured:
    """Build the one-sentence error every bad value gets: variable, value, choices."""
    why = f" ({why})" if why else ""
    # Never echo a URL's password into a traceback or a server log.
    value = _URL_PASSWORD.sub(r"\1***@", value)
    message = f"{name}={value!r} is invalid{why}; allowed values: {allowed}."
    return ImproperlyConfigured(message)


def _bool(name: str, default: bool) -> bool:
    if name not in _ENV:
        return default
    value = _ENV[name]
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise _invalid(name, value, _BOOLEAN_CHOICES) from None


def _int(name: str, default: int | None, minimum: int, allowed: str) -> int | None:
    if name not in _ENV:
        return default
    value = _ENV[name]
    # int() would also take "+5", " 5", "1_000" and non-ASCII digits: too lenient.
    if not _UINT.fullmatch(value) or int(value) < minimum:
        raise _invalid(name, value, allowed)
    return int(value)


def _milliseconds(name: str) -> float:
    """A duration in ms, 0 (the default) included: 0 means "off"."""
    if name not in _ENV:
        return 0.0
    value = _ENV[name]
    if not _UFLOAT.fullmatch(value):
        raise _invalid(name, value, "a number of milliseconds >= 0, e.g. 1 or 0.5")
    return float(value)


def _seconds(name: str) -> float | None:
    if name not in _ENV:
        return None
    value = _ENV[name]
    if not _UFLOAT.fullmatch(value) or float(value) <= 0:
        raise _invalid(name, value, "a number of seconds greater than 0, e.g. 30 or 0.5")
    return float(value)


# Database ###############################################################################

_DATABASE_URL_FORMS = (
    "postgresql://user[:password]@host[:port]/dbname (or postgres://...) "
    "or sqlite:///absolute/path.sqlite3"
)


def _database(url: str | None) -> dict[str, Any]:
    """Turn ``LAB_DATABASE_URL`` into a ``DATABASES["default"]`` dict (without knobs)."""
    if url is None:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "lab.sqlite3"}

    def bad(reason: str) -> ImproperlyConfigured:
        return _invalid("LAB_DATABASE_URL", url, _DATABASE_URL_FORMS, reason)

    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise bad("query strings and fragments are not supported")
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise bad("the SQLite path must be absolute, after three slashes")
        # sqlite:///abs/path and SQLAlchemy's sqlite:////abs/path both mean /abs/path.
        path = "/" + unquote(parts.path).lstrip("/")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": Path(path)}
    if parts.scheme not in ("postgresql", "postgres"):
        raise bad(f"unknown scheme {parts.scheme!r}")
    try:
        port = parts.port
    except ValueError:
        raise bad("the port is not a number from 0 to 65535") from None
    dbname = unquote(parts.path.removeprefix("/"))
    if not parts.username:
        raise bad("the user is missing")
    if not parts.hostname:
        raise bad("the host is missing")
    if not dbname or "/" in dbname:
        raise bad("the database name is missing")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": dbname,
        "USER": unquote(parts.username),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname,
        "PORT": str(port) if port is not None else "",
    }


def _database_knobs(database: dict[str, Any]) -> dict[str, Any]:
    """Add the connection knobs a lesson turns: persistence, health checks, pool..."""
    postgres = database["ENGINE"] == "django.db.backends.postgresql"
    max_age_allowed = "a whole number of seconds >= 0, or 'none' for unlimited"
    if _ENV.get("LAB_CONN_MAX_AGE", "").lower() == "none":
        conn_max_age = None
    else:
        conn_max_age = _int("LAB_CONN_MAX_AGE", 0, 0, max_age_allowed)
    options: dict[str, Any] = {}

    pool = _bool("LAB_DB_POOL", False)
    size = _int("LAB_DB_POOL_SIZE", None, 1, "a whole number >= 1")
    timeout = _seconds("LAB_DB_POOL_TIMEOUT")
    if pool:
        if not postgres:
            raise _invalid("LAB_DB_POOL", _ENV["LAB_DB_POOL"], "0", "pooling needs PostgreSQL")
        if conn_max_age != 0:
            # Django itself refuses this at the first query; say it at start-up instead.
            raise _invalid(
                "LAB_CONN_MAX_AGE",
                _ENV["LAB_CONN_MAX_AGE"],
                "0",
                "Django's connection pool (LAB_DB_POOL=1) requires CONN_MAX_AGE=0",
            )
        if size is not None:
            # A fixed-size pool: min == max, so every connection is opened once and kept.
            options["pool"] = {
                "min_size": size,
                "max_size": size,
                "timeout": 30.0 if timeout is None else timeout,
            }
        elif timeout is not None:
            # psycopg_pool's default size (4) with a different wait limit.
            options["pool"] = {"timeout": timeout}
        else:
            # Django's default: psycopg_pool's fixed 4 connections, 30 s wait.
            options["pool"] = True
    else:
        for name in ("LAB_DB_POOL_SIZE", "LAB_DB_POOL_TIMEOUT"):
            if name in _ENV:
                raise _invalid(name, _ENV[name], "unset", "it needs LAB_DB_POOL=1")

    # LAB_DJ_DB_CONN_POOL: the guide's other pool, the django-db-connection-pool package,
    # with exactly the guide's settings. Its backend subclasses Django's PostgreSQL one and
    # replaces get_new_connection() with a checkout from an SQLAlchemy QueuePool (one per
    # process and alias, shared by every thread); Django's close() of the connection at
    # the end of a request (CONN_MAX_AGE=0) hands it back to that pool.
    guide_pool = _bool("LAB_DJ_DB_CONN_POOL", False)
    if guide_pool:
        name = "LAB_DJ_DB_CONN_POOL"
        if not postgres:
            raise _invalid(name, _ENV[name], "0", "the guide's pool is set up for PostgreSQL")
        if pool:
            raise _invalid(name, _ENV[name], "0", "LAB_DB_POOL=1 already pools: one pool at a time")
        if conn_max_age != 0:
            # The package accepts it, but then Django never closes the connection between
            # requests, so it never goes back to the pool: the guide's snippet leaves
            # CONN_MAX_AGE at its default, 0.
            raise _invalid(
                "LAB_CONN_MAX_AGE",
                _ENV["LAB_CONN_MAX_AGE"],
                "0",
                "the guide's pool (LAB_DJ_DB_CONN_POOL=1) hands connections back to its pool "
                "only when Django closes them, which CONN_MAX_AGE=0 does after each request",
            )

    statement_timeout = _int("LAB_STATEMENT_TIMEOUT_MS", 0, 0, "a whole number of ms >= 0")
    if statement_timeout:
        if not postgres:
            raise _invalid(
                "LAB_STATEMENT_TIMEOUT_MS",
                _ENV["LAB_STATEMENT_TIMEOUT_MS"],
                "0",
                "statement_timeout is a PostgreSQL setting, not SQLite",
            )
        options["options"] = f"-c statement_timeout={statement_timeout}"

    # A guard against a stuck server, not a behaviour under test: ignored for SQLite.
    connect_timeout = _int("LAB_CONNECT_TIMEOUT", 5, 0, "a whole number of seconds >= 0")
    if postgres:
        options["connect_timeout"] = connect_timeout

    knobs = {
        **database,
        "CONN_MAX_AGE": conn_max_age,
        "CONN_HEALTH_CHECKS": _bool("LAB_CONN_HEALTH_CHECKS", False),
        "OPTIONS": options,
    }
    if guide_pool:
        # The guide's section 8, as written (the package's other defaults: a pre-ping on
        # every checkout, a 30 s wait for a free connection).
        knobs["ENGINE"] = "dj_db_conn_pool.backends.postgresql"
        knobs["POOL_OPTIONS"] = {"POOL_SIZE": 10, "MAX_OVERFLOW": 10, "RECYCLE": 300}
    return knobs


# Cache ##################################################################################


# LAB_REDIS_PARSER: which RESP parser redis-py uses, for a measured comparison. "auto" is
# redis-py's own choice (hiredis when installed). The classes are redis-py 8's private
# names: the guide's public "redis.connection.HiredisParser" no longer exists (an
# ImportError at the first cache call). redis-py 8 speaks RESP3 by default, so the
# pure-Python parser is the RESP3 one.
_REDIS_PARSERS = {
    "auto": None,
    "python": "redis.connection._RESP3Parser",
    "hiredis": "redis.connection._HiredisParser",
}

# LAB_CACHE_DELAY_MS: a lab-only knob, not a Django setting. It simulates the network
# round trip to a Redis on another host (the lab's Valkey is on loopback, ~0.1 ms away)
# by sleeping that long in every cache call (lab/slow_cache.py), so that what a
# blocking cache call costs becomes large enough to measure.
_DELAYED_BACKENDS = {
    "django-redis": "lab.slow_cache.DelayedDjangoRedisCache",
    "redis": "lab.slow_cache.DelayedRedisCache",
}


def _caches() -> dict[str, dict[str, Any]]:
    name = "LAB_CACHE"
    choice = _ENV.get(name, "none").lower()
    parser = _ENV.get("LAB_REDIS_PARSER", "auto").lower()
    if parser not in _REDIS_PARSERS:
        raise _invalid("LAB_REDIS_PARSER", _ENV["LAB_REDIS_PARSER"], "auto, python, hiredis")
    delay_ms = _milliseconds("LAB_CACHE_DELAY_MS")
    if choice in ("none", "locmem"):
        # Both knobs only mean something for a cache reached over the network.
        why = "it needs LAB_CACHE=django-redis or redis"
        if parser != "auto":
            raise _invalid("LAB_REDIS_PARSER", _ENV["LAB_REDIS_PARSER"], "auto", why)
        if delay_ms:
            raise _invalid("LAB_CACHE_DELAY_MS", _ENV["LAB_CACHE_DELAY_MS"], "0", why)
    if choice == "none":
        # DummyCache: every cache call is a miss, so "no cache" is measured honestly.
        return {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    if choice == "locmem":
        # Per process: N workers hold N independent caches.
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": "lab",
            }
        }
    if choice not in ("django-redis", "redis"):
        raise _invalid(name, _ENV[name], "none, locmem, django-redis, redis")
    url = _ENV.get("LAB_REDIS_URL")
    if url is None:
        raise ImproperlyConfigured(
            f"LAB_REDIS_URL is missing but LAB_CACHE={choice!r} needs it; allowed values: "
            "a redis://, rediss:// or unix:// URL such as redis://127.0.0.1:6379/0."
        )
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise _invalid(
            "LAB_REDIS_URL",
            url,
            "a redis://, rediss:// or unix:// URL such as redis://127.0.0.1:6379/0",
        )
    if choice == "redis":
        cache: dict[str, Any] = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
        }
        if _REDIS_PARSERS[parser]:
            # Django's RedisCacheClient takes the dotted path as parser_class.
            cache["OPTIONS"] = {"parser_class": _REDIS_PARSERS[parser]}
    else:
        cache = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # No PARSER_CLASS by default: the guide's "redis.connection.HiredisParser"
                # is an ImportError on redis-py >= 5, which picks hiredis up by itself.
                "CONNECTION_POOL_KWARGS": {"max_connections": 50},
            },
        }
        if _REDIS_PARSERS[parser]:
            cache["OPTIONS"]["PARSER_CLASS"] = _REDIS_PARSERS[parser]
    if delay_ms:
        cache["BACKEND"] = _DELAYED_BACKENDS[choice]
        # A key of the cache's own dict (not OPTIONS, which Django's RedisCache passes
        # on to redis-py as keyword arguments): read by lab/slow_cache.py.
        cache["LAB_DELAY_MS"] = delay_ms
    return {"default": cache}


# Middleware #############################################################################

_SECURITY = "django.middleware.security.SecurityMiddleware"
_SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
_COMMON = "django.middleware.common.CommonMiddleware"
_CSRF = "django.middleware.csrf.CsrfViewMiddleware"
_AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
_MESSAGE = "django.contrib.messages.middleware.MessageMiddleware"
_XFRAME = "django.middleware.clickjacking.XFrameOptionsMiddleware"

_MIDDLEWARE_PRESETS: dict[str, list[str]] = {
    # Exactly what `django-admin startproject` generates in Django 6.1.
    "default": [_SECURITY, _SESSION, _COMMON, _CSRF, _AUTH, _MESSAGE, _XFRAME],
    # The guide's trimmed stack.
    "minimal": [_SECURITY, _SESSION, _COMMON],
    "none": [],
}


def _middleware() -> list[str]:
    name = "LAB_MIDDLEWARE"
    value = _ENV.get(name, "default")
    if value.lower() in _MIDDLEWARE_PRESETS:
        return list(_MIDDLEWARE_PRESETS[value.lower()])
    paths = [path.strip() for path in value.split(",")]
    if not all(_DOTTED_PATH.fullmatch(path) for path in paths):
        raise _invalid(
            name, value, "default, minimal, none, or a comma-separated list of dotted paths"
        )
    return paths


# Lesson knobs ###########################################################################


def _upstream_url() -> str | None:
    """``LAB_UPSTREAM_URL``: where lesson 3's "external API" (lab_project/upstream) runs."""
    name = "LAB_UPSTREAM_URL"
    if name not in _ENV:
        return None
    url = _ENV[name]
    allowed = "an http:// or https:// URL such as http://127.0.0.1:8001"
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (a port that is not a number from 0 to 65535 raises)
    except ValueError:
        raise _invalid(name, url, allowed, "the port is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(name, url, allowed)
    if parts.query or parts.fragment:
        raise _invalid(name, url, allowed, "query strings and fragments are not supported")
    # Views append "/data": a trailing slash would make it "//data".
    return url.rstrip("/")


# Off by default: LAB_INSTRUMENT=1 patches asgiref and threading to count thread hops,
# threads and queries (lab/instrument.py); when off, nothing is imported or patched.
LAB_INSTRUMENT = _bool("LAB_INSTRUMENT", False)

# The upstream stand-in's base URL; the /l03/ views answer 503 while it is unset.
LAB_UPSTREAM_URL = _upstream_url()


# Profilers #############################################################################

# LAB_PROFILER: lesson 10's profilers, one at a time. Nothing of a profiler is imported or
# installed unless it is chosen, so "none" measures the project without any of them.
_PROFILERS = ("none", "silk", "pyinstrument", "debug-toolbar")
# The profilers that write files (silk's .prof files, pyinstrument's HTML pages).
_WRITING_PROFILERS = ("silk", "pyinstrument")


def _profiler(debug: bool) -> str:
    name = "LAB_PROFILER"
    value = _ENV.get(name, "none").lower()
    if value not in _PROFILERS:
        raise _invalid(name, _ENV[name], ", ".join(_PROFILERS))
    if value == "debug-toolbar" and not debug:
        # The toolbar shows itself only when DEBUG is on (its default
        # SHOW_TOOLBAR_CALLBACK), and DEBUG is part of what it costs: refuse rather than
        # measure a toolbar that never runs.
        raise _invalid(
            name, _ENV[name], "none, silk, pyinstrument",
            "the debug toolbar only runs with DEBUG, so it needs LAB_DEBUG=1",
        )
    return value


def _profile_dir(profiler: str) -> Path | None:
    """``LAB_PROFILE_DIR``: where the profilers write their files (optional).

    Checked only for the profilers that write there, so a launcher may pass it to every
    server. It must already exist: pyinstrument creates only the last component, and two
    workers racing to create it would fail.
    """
    name = "LAB_PROFILE_DIR"
    if name not in _ENV:
        return None
    path = Path(_ENV[name])
    allowed = "an absolute path to an existing directory the server can write to"
    if not path.is_absolute():
        raise _invalid(name, _ENV[name], allowed, "the path is relative")
    if profiler in _WRITING_PROFILERS and not (
        path.is_dir() and os.access(path, os.W_OK | os.X_OK)
    ):
        raise _invalid(name, _ENV[name], allowed, "it is not a writable directory")
    return path


# Django settings ########################################################################

DEBUG = _bool("LAB_DEBUG", False)

if "LAB_SECRET_KEY" in _ENV:
    SECRET_KEY = _ENV["LAB_SECRET_KEY"]
else:
    # Imported only when needed: on its own, django.core.management costs ~70 ms, most
    # of this module's import time (django.setup() loads it later anyway).
    # A generated key differs per process, so sessions and CSRF tokens do not survive
    # across workers or restarts: set LAB_SECRET_KEY when that matters (e.g. admin).
    from django.core.management.utils import get_random_secret_key

    SECRET_KEY = get_random_secret_key()

# The lab binds loopback only.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "catalog",
]

MIDDLEWARE = _middleware()

# The admin's system checks insist on the auth, message and session middleware and stop
# `manage.py migrate` (which runs them) with an error. The trimmed presets leave them out
# on purpose, to measure what they cost; silence only the checks that would fire, so the
# project still migrates. The admin itself needs the full stack to work in a browser.
SILENCED_SYSTEM_CHECKS = [
    check
    for check, required in (
        ("admin.E408", _AUTH),
        ("admin.E409", _MESSAGE),
        ("admin.E410", _SESSION),
    )
    if required not in MIDDLEWARE
]

# Lesson 10's profilers (LAB_PROFILER), each as its own docs set it up, first in
# MIDDLEWARE so that it sees the whole request; silk and pyinstrument profile only the
# /l10/ and /l11/ endpoints (lab/profiling.py says why). Each leaves JSON bodies untouched: the
# debug toolbar only writes into HTML pages. lab/urls.py mounts /silk/ and /__debug__/.
LAB_PROFILER = _profiler(DEBUG)
LAB_PROFILE_DIR = _profile_dir(LAB_PROFILER)

if LAB_PROFILER == "silk":
    from lab.profiling import is_profiled

    # Its tables exist in every lab database: the lab migrates with LAB_PROFILER=silk.
    INSTALLED_APPS.append("silk")
    MIDDLEWARE.insert(0, "silk.middleware.SilkyMiddleware")
    SILKY_INTERCEPT_FUNC = is_profiled
    # cProfile around each intercepted request; its text goes to silk_request.pyprofile.
    SILKY_PYTHON_PROFILER = True
    # The .prof files (for snakeviz, pstats) need a directory: only with LAB_PROFILE_DIR.
    SILKY_PYTHON_PROFILER_BINARY = LAB_PROFILE_DIR is not None
    if LAB_PROFILE_DIR is not None:
        SILKY_PYTHON_PROFILER_RESULT_PATH = str(LAB_PROFILE_DIR)
elif LAB_PROFILER == "pyinstrument":
    from lab.profiling import is_profiled, pyinstrument_filename

    MIDDLEWARE.insert(0, "pyinstrument.middleware.ProfilerMiddleware")
    # pyinstrument profiles the requests this callback accepts: every one of them while
    # PYINSTRUMENT_PROFILE_DIR is set (each HTML page saved there), else only those
    # with ?profile in the URL (the page then replaces the response).
    PYINSTRUMENT_SHOW_CALLBACK = is_profiled
    if LAB_PROFILE_DIR is not None:
        PYINSTRUMENT_PROFILE_DIR = str(LAB_PROFILE_DIR)
        PYINSTRUMENT_FILENAME_CALLBACK = pyinstrument_filename
elif LAB_PROFILER == "debug-toolbar":
    # Shown for every request from INTERNAL_IPS while DEBUG is on (the toolbar's default):
    # a JSON endpoint's requests appear in the History panel of any HTML page (/admin/).
    # DEBUG also makes Django keep every query of a request in connection.queries.
    INSTALLED_APPS.append("debug_toolbar")
    MIDDLEWARE.insert(0, "debug_toolbar.middleware.DebugToolbarMiddleware")
    INTERNAL_IPS = ["127.0.0.1"]

ROOT_URLCONF = "lab.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "lab.wsgi.application"

DATABASES = {"default": _database_knobs(_database(_ENV.get("LAB_DATABASE_URL")))}

# The statement timeout in ms (0: none), for the sentence lesson 8's views answer with
# when PostgreSQL cancels a query; DATABASES carries it as "-c statement_timeout=N".
LAB_STATEMENT_TIMEOUT_MS = _int("LAB_STATEMENT_TIMEOUT_MS", 0, 0, "a whole number of ms >= 0")

CACHES = _caches()

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# Lesson 6's DRF endpoint (api/l06.py says why each choice): JSON in and out only, so a
# browser's Accept header cannot switch it to the browsable API, and no authentication,
# like the Ninja and raw endpoints it races. Neither DRF nor Ninja is in INSTALLED_APPS:
# only their templates and static files (DRF's browsable API) would need it.
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
