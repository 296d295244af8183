"""The lab's wrapper around a learner's settings (``python -m lessons audit``).

Every child the audit starts for a project (``manage.py migrate``, the servers) runs
with ``DJANGO_SETTINGS_MODULE=p99lab_audit_settings``.  This module takes every public
name of the project's own settings module (named by ``P99LAB_AUDIT_PROJECT_SETTINGS``),
as ``from <that module> import *`` does, then applies the lab's overrides, a JSON object
in ``P99LAB_AUDIT_OVERRIDES`` (written by ``lessons.audit.wrapper``):

* ``settings``: names replaced whole (``DEBUG``, ``ALLOWED_HOSTS``, ``MIDDLEWARE``...);
* ``database``: keys set in every alias of ``DATABASES`` (so no alias, a replica
  included, reaches a database the audit was not given); its ``OPTIONS`` are merged into
  each alias's, after the keys in ``drop_options`` are removed (those that choose a
  server or credentials: the lab gives its own); an alias on another engine than
  PostgreSQL is switched to Django's PostgreSQL backend;
* ``caches``: ``CACHES`` aliases replaced whole (the others stay the project's);
* ``redis_url``: every ``CACHES`` alias whose backend is a Redis cache (Django's or
  django-redis) gets this ``LOCATION`` (the lab's Valkey, same database number), so no
  request reaches the learner's Redis; its ``OPTIONS`` are kept.

The project's files are never changed: the change lives in this process only.  The
module's name starts with ``p99lab_`` so it cannot clash with a module of the project,
and it imports only the standard library (it runs in the project's own interpreter).
"""

from __future__ import annotations

# Private names: a project's settings may define `json` or `os` of its own.
import importlib as _importlib
import json as _json
import os as _os
import re as _re
from urllib.parse import urlsplit as _urlsplit

_project = _importlib.import_module(_os.environ["P99LAB_AUDIT_PROJECT_SETTINGS"])
_names = getattr(_project, "__all__", None)
if _names is None:
    _names = [name for name in vars(_project) if not name.startswith("_")]
globals().update({name: getattr(_project, name) for name in _names})


def _override(overrides: dict) -> None:
    """Apply the lab's overrides to this module's settings (see the docstring)."""
    here = globals()
    here.update(overrides.get("settings", {}))
    database = overrides.get("database")
    if database is not None:
        drop = set(overrides.get("drop_options", ()))
        here["DATABASES"] = {alias: _database_here(dict(conf), database, drop)
                             for alias, conf in (here.get("DATABASES") or {"default": {}}).items()}
    if overrides.get("caches"):
        here["CACHES"] = {**(here.get("CACHES") or {}), **overrides["caches"]}
    redis_url = overrides.get("redis_url")
    if redis_url and here.get("CACHES"):
        here["CACHES"] = {alias: _redis_here(dict(conf), redis_url) for alias, conf in here["CACHES"].items()}


def _database_here(conf: dict, keys: dict, drop: set) -> dict:
    """``conf`` (one alias) pointed at the database ``keys`` names, its OPTIONS kept but
    for those in ``drop``.  Another engine (SQLite, MySQL...) becomes PostgreSQL, the lab's
    database, and its OPTIONS, meant for that engine, go."""
    options = {k: v for k, v in (conf.get("OPTIONS") or {}).items() if k not in drop}
    if "postg" not in str(conf.get("ENGINE", "")):
        conf["ENGINE"], options = "django.db.backends.postgresql", {}
    options.update(keys.get("OPTIONS", {}))
    conf.update({k: v for k, v in keys.items() if k != "OPTIONS"})
    conf["OPTIONS"] = options
    return conf


def _redis_here(conf: dict, url: str) -> dict:
    """``conf`` with its LOCATION on ``url`` when its backend is a Redis cache."""
    if not str(conf.get("BACKEND", "")).endswith(".RedisCache"):
        return conf
    location = conf.get("LOCATION") or ""
    first = location[0] if isinstance(location, (list, tuple)) and location else str(location)
    db = _urlsplit(_re.split("[;,]", first)[0]).path.strip("/")  # Django's RedisCache splits on both
    conf["LOCATION"] = _urlsplit(url)._replace(path="/" + (db if db.isdigit() else "0")).geturl()
    return conf


_override(_json.loads(_os.environ.get("P99LAB_AUDIT_OVERRIDES") or "{}"))
