"""
Settings for the Django p99 lab project.

Every knob a lesson flips (database, pool, cache, middleware, debug...) arrives as a
``LAB_*`` environment variable, and this module is the only place that reads them, once,
into ``_ENV``. A server's behaviour is therefore fully described by its environment,
which is what lets a notebook start the same project under many configurations.

Values are parsed strictly (lab/env.py): a typo must stop the server with one clear
sentence, not silently measure a different configuration than the one the learner asked
for. The names a knob takes (middleware presets, caches, profilers) and the rules between
knobs are lab/knobs.py's table, which lessons.profile reads too.

This module runs in every server worker, so it imports nothing heavy.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from lab import knobs
from lab.env import LabEnv, invalid

BASE_DIR = Path(__file__).resolve().parent.parent

# The one read of the environment. Empty values count as unset, so a launcher can
# blank a variable out instead of deleting it.
_ENV = LabEnv({
    name: value.strip()
    for name, value in os.environ.items()
    if name.startswith("LAB_") and value.strip()
})

# Knobs ##################################################################################

_POSTGRESQL = "django.db.backends.postgresql"


def _knob_values(database: dict[str, Any]) -> dict[str, Any]:
    """Every knob the rules between knobs read (lab/knobs.py), each parsed on its own,
    by its name in the knob table; then the first rule they break stops the server."""
    if _ENV.get("LAB_CONN_MAX_AGE", "").lower() == "none":
        conn_max_age = None
    else:
        max_age_allowed = "a whole number of seconds >= 0, or 'none' for unlimited"
        conn_max_age = _ENV.integer("LAB_CONN_MAX_AGE", 0, 0, max_age_allowed)
    values = {
        "database": "postgres" if database["ENGINE"] == _POSTGRESQL else "sqlite",
        "conn_max_age": conn_max_age,
        "db_pool": _ENV.boolean("LAB_DB_POOL", False),
        "db_pool_size": _ENV.integer("LAB_DB_POOL_SIZE", None, 1, "a whole number >= 1"),
        "db_pool_timeout": _ENV.seconds("LAB_DB_POOL_TIMEOUT"),
        "dj_db_conn_pool": _ENV.boolean("LAB_DJ_DB_CONN_POOL", False),
        "statement_timeout_ms": _ENV.integer("LAB_STATEMENT_TIMEOUT_MS", 0, 0, "a whole number of ms >= 0"),
        "debug": _ENV.boolean("LAB_DEBUG", False),
        "profiler": _ENV.choice("LAB_PROFILER", "none", knobs.PROFILERS),
        "cache": _ENV.choice("LAB_CACHE", "none", knobs.CACHES),
        "redis_parser": _ENV.choice("LAB_REDIS_PARSER", "auto", knobs.REDIS_PARSERS),
        "cache_delay_ms": _ENV.milliseconds("LAB_CACHE_DELAY_MS"),
    }
    for rule in knobs.broken_rules(values)[:1]:
        raise invalid(rule.variable, _ENV[rule.variable], rule.allowed, rule.why)
    return values


def _database_knobs(database: dict[str, Any], k: dict[str, Any]) -> dict[str, Any]:
    """Add the connection knobs a lesson turns: persistence, health checks, pool..."""
    options: dict[str, Any] = {}
    if k["db_pool"]:
        size, timeout = k["db_pool_size"], k["db_pool_timeout"]
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
    if k["statement_timeout_ms"]:
        options["options"] = f"-c statement_timeout={k['statement_timeout_ms']}"

    # A guard against a stuck server, not a behaviour under test: ignored for SQLite.
    connect_timeout = _ENV.integer("LAB_CONNECT_TIMEOUT", 5, 0, "a whole number of seconds >= 0")
    if k["database"] == "postgres":
        options["connect_timeout"] = connect_timeout

    settings = {
        **database,
        "CONN_MAX_AGE": k["conn_max_age"],
        "CONN_HEALTH_CHECKS": _ENV.boolean("LAB_CONN_HEALTH_CHECKS", False),
        "OPTIONS": options,
    }
    if k["dj_db_conn_pool"]:
        # LAB_DJ_DB_CONN_POOL: the guide's other pool, the django-db-connection-pool
        # package, with exactly the guide's settings (section 8, as written; the package's
        # other defaults: a pre-ping on every checkout, a 30 s wait for a free connection).
        # Its backend subclasses Django's PostgreSQL one and replaces get_new_connection()
        # with a checkout from an SQLAlchemy QueuePool (one per process and alias, shared
        # by every thread); Django's close() of the connection at the end of a request
        # (CONN_MAX_AGE=0) hands it back to that pool.
        settings["ENGINE"] = "dj_db_conn_pool.backends.postgresql"
        settings["POOL_OPTIONS"] = {"POOL_SIZE": 10, "MAX_OVERFLOW": 10, "RECYCLE": 300}
    return settings


# Cache ##################################################################################


def _caches(k: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """LAB_CACHE (a name in lab/knobs.py's CACHES) as Django's CACHES."""
    choice = k["cache"]
    cache = knobs.CACHES[choice]
    settings: dict[str, Any] = {"BACKEND": cache.backend}
    if cache.location:
        settings["LOCATION"] = cache.location
    if not cache.network:
        return {"default": settings}
    url = _ENV.get("LAB_REDIS_URL")
    if url is None:
        raise ImproperlyConfigured(
            f"LAB_REDIS_URL is missing but LAB_CACHE={choice!r} needs it; allowed values: "
            "a redis://, rediss:// or unix:// URL such as redis://127.0.0.1:6379/0."
        )
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise invalid(
            "LAB_REDIS_URL",
            url,
            "a redis://, rediss:// or unix:// URL such as redis://127.0.0.1:6379/0",
        )
    settings["LOCATION"] = url
    options = copy.deepcopy(dict(cache.options))
    parser = knobs.REDIS_PARSERS[k["redis_parser"]]
    if parser:
        options[cache.parser_option] = parser
    if options:
        settings["OPTIONS"] = options
    if k["cache_delay_ms"]:
        settings["BACKEND"] = cache.delayed
        # A key of the cache's own dict (not OPTIONS, which Django's RedisCache passes
        # on to redis-py as keyword arguments): read by lab/slow_cache.py.
        settings["LAB_DELAY_MS"] = k["cache_delay_ms"]
    return {"default": settings}


# Middleware #############################################################################


def _middleware() -> list[str]:
    """LAB_MIDDLEWARE: a preset of lab/knobs.py, or a comma-separated list."""
    name = "LAB_MIDDLEWARE"
    value = _ENV.get(name, "default")
    if value.lower() in knobs.MIDDLEWARE_PRESETS:
        return list(knobs.MIDDLEWARE_PRESETS[value.lower()])
    paths = [path.strip() for path in value.split(",")]
    if not all(knobs.DOTTED_PATH.fullmatch(path) for path in paths):
        raise invalid(name, value, knobs.MIDDLEWARE_CHOICES)
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
        raise invalid(name, url, allowed, "the port is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(name, url, allowed)
    if parts.query or parts.fragment:
        raise invalid(name, url, allowed, "query strings and fragments are not supported")
    # Views append "/data": a trailing slash would make it "//data".
    return url.rstrip("/")


# Off by default: LAB_INSTRUMENT=1 patches asgiref and threading to count thread hops,
# threads and queries (lab/instrument.py); when off, nothing is imported or patched.
LAB_INSTRUMENT = _ENV.boolean("LAB_INSTRUMENT", False)

# The upstream stand-in's base URL; the /l03/ views answer 503 while it is unset.
LAB_UPSTREAM_URL = _upstream_url()


# Profilers #############################################################################


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
        raise invalid(name, _ENV[name], allowed, "the path is relative")
    if knobs.PROFILERS[profiler].writes_files and not (
        path.is_dir() and os.access(path, os.W_OK | os.X_OK)
    ):
        raise invalid(name, _ENV[name], allowed, "it is not a writable directory")
    return path


# Django settings ########################################################################

# The database's URL, then every knob a rule between knobs reads, parsed and checked.
_DATABASE = _ENV.database(BASE_DIR / "lab.sqlite3")
_KNOBS = _knob_values(_DATABASE)

DEBUG = _KNOBS["debug"]

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
        ("admin.E408", knobs.AUTH),
        ("admin.E409", knobs.MESSAGE),
        ("admin.E410", knobs.SESSION),
    )
    if required not in MIDDLEWARE
]

# Lesson 10's profilers (LAB_PROFILER), each as its own docs set it up, first in
# MIDDLEWARE so that it sees the whole request; silk and pyinstrument profile only the
# /l10/ and /l11/ endpoints (lab/profiling.py says why). Each leaves JSON bodies untouched: the
# debug toolbar only writes into HTML pages. lab/urls.py mounts /silk/ and /__debug__/.
LAB_PROFILER = _KNOBS["profiler"]
LAB_PROFILE_DIR = _profile_dir(LAB_PROFILER)
_PROFILER = knobs.PROFILERS[LAB_PROFILER]
if _PROFILER.middleware:
    MIDDLEWARE.insert(0, _PROFILER.middleware)
if _PROFILER.app:
    # silk's tables exist in every lab database: the lab migrates with LAB_PROFILER=silk.
    INSTALLED_APPS.append(_PROFILER.app)

if LAB_PROFILER == "silk":
    from lab.profiling import is_profiled

    SILKY_INTERCEPT_FUNC = is_profiled
    # cProfile around each intercepted request; its text goes to silk_request.pyprofile.
    SILKY_PYTHON_PROFILER = True
    # The .prof files (for snakeviz, pstats) need a directory: only with LAB_PROFILE_DIR.
    SILKY_PYTHON_PROFILER_BINARY = LAB_PROFILE_DIR is not None
    if LAB_PROFILE_DIR is not None:
        SILKY_PYTHON_PROFILER_RESULT_PATH = str(LAB_PROFILE_DIR)
elif LAB_PROFILER == "pyinstrument":
    from lab.profiling import is_profiled, pyinstrument_filename

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

DATABASES = {"default": _database_knobs(_DATABASE, _KNOBS)}

# The statement timeout in ms (0: none), for the sentence lesson 8's views answer with
# when PostgreSQL cancels a query; DATABASES carries it as "-c statement_timeout=N".
LAB_STATEMENT_TIMEOUT_MS = _KNOBS["statement_timeout_ms"]

CACHES = _caches(_KNOBS)

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
