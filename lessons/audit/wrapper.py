"""The lab's side of the wrapper settings: what every child of an audited project runs with.

The audit never edits a project and never imports it here.  Its children (``manage.py
migrate``, the servers) run the project's own code in the project's interpreter with
``lessons/audit/inject`` first on ``PYTHONPATH`` and ``DJANGO_SETTINGS_MODULE`` set to
the wrapper (``inject/p99lab_audit_settings.py``), which imports the project's settings
and applies an ``Overrides`` value passed as JSON in the environment.  Every change the
audit measures (``--apply``'s steps) is one more ``Overrides``.

The base overrides, always applied:

* ``DEBUG = False``: production's value (a finding reports a project's ``DEBUG = True``);
* ``ALLOWED_HOSTS``: the loopback names the lab's clients send;
* ``SECURE_SSL_REDIRECT = False``: the lab serves plain HTTP on loopback where production
  has TLS in front, and a redirect to https would answer every request with a 301;
* the database: the audit's (a fresh one in the lab's PostgreSQL, or ``--database``);
* Redis caches: on the lab's Valkey (see the wrapper's docstring).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from lessons import config

if TYPE_CHECKING:
    from lessons.audit.project import Project

__all__ = ["INJECT", "SETTINGS_MODULE", "APPS", "READY_PATH", "INSTRUMENT", "SERVER_OPTIONS",
           "Overrides", "base_overrides", "database_keys", "child_env"]

INJECT = Path(__file__).resolve().parent / "inject"
SETTINGS_MODULE = "p99lab_audit_settings"
APPS = {"wsgi": "p99lab_audit_wsgi:application", "asgi": "p99lab_audit_asgi:application"}
READY_PATH = "/__p99lab__/ready"  # inject/p99lab_audit_app.py answers it
INSTRUMENT = config.LAB_PROJECT / "lab" / "instrument.py"  # the lab's counters, loaded by path

# libpq connection parameters that choose the server or the credentials: a project's
# OPTIONS keep everything else (timeouts, the pool, ``options``), these go.
SERVER_OPTIONS = ("service", "passfile", "host", "hostaddr", "port", "dbname", "user",
                  "password", "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword",
                  "sslcrl", "sslcrldir", "target_session_attrs")


@dataclass(frozen=True)
class Overrides:
    """What the wrapper settings change (``inject/p99lab_audit_settings.py`` applies it):
    settings replaced whole, keys set in every database alias (``OPTIONS`` merged), the
    OPTIONS keys dropped, cache aliases replaced whole, the Redis URL for Redis caches."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    database: Mapping[str, Any] = field(default_factory=dict)
    drop_options: tuple[str, ...] = SERVER_OPTIONS
    caches: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    redis_url: str = ""

    def with_settings(self, **names: Any) -> Overrides:
        """A copy with more settings replaced."""
        return dataclasses.replace(self, settings={**self.settings, **names})

    def with_database(self, **keys: Any) -> Overrides:
        """A copy with more database keys set (``OPTIONS`` merged with the earlier ones)."""
        merged = {**self.database, **keys}
        if "OPTIONS" in keys:
            merged["OPTIONS"] = {**self.database.get("OPTIONS", {}), **keys["OPTIONS"]}
        return dataclasses.replace(self, database=merged)

    def with_caches(self, **aliases: Mapping[str, Any]) -> Overrides:
        """A copy with more ``CACHES`` aliases replaced whole (the others stay the project's)."""
        return dataclasses.replace(self, caches={**self.caches, **aliases})

    def to_json(self) -> str:
        return json.dumps({"settings": dict(self.settings), "database": dict(self.database),
                           "drop_options": list(self.drop_options), "caches": dict(self.caches),
                           "redis_url": self.redis_url}, sort_keys=True)


def database_keys(url: str) -> dict[str, str]:
    """``DATABASES`` keys for a ``postgresql://`` (or ``postgres://``) URL."""
    u = urlsplit(url)
    if u.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"{url!r} is not a postgresql:// URL")
    return {"NAME": unquote(u.path.lstrip("/")), "USER": unquote(u.username or ""),
            "PASSWORD": unquote(u.password or ""), "HOST": u.hostname or "",
            "PORT": str(u.port or "")}


def base_overrides(database_url: str, redis_url: str) -> Overrides:
    """The overrides every child runs with (see the module's docstring)."""
    return Overrides(
        settings={"DEBUG": False, "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
                  "SECURE_SSL_REDIRECT": False},
        database=database_keys(database_url),
        redis_url=redis_url,
    )


def child_env(project: Project, overrides: Overrides, *, instrument: bool = False) -> dict[str, str]:
    """The environment of a child that runs the project through the wrapper: the
    project's own (``Project.child_env``) with the inject directory first on the path,
    the wrapper as settings, the overrides; the lab's counters when ``instrument``.
    ``GUNICORN_CMD_ARGS`` is emptied: the lab's command is the whole command."""
    env = project.child_env(settings_module=SETTINGS_MODULE, extra_path=[INJECT])
    env.update({
        "P99LAB_AUDIT_PROJECT_SETTINGS": project.settings_module,
        "P99LAB_AUDIT_OVERRIDES": overrides.to_json(),
        "GUNICORN_CMD_ARGS": "",
    })
    env.pop("P99LAB_AUDIT_INSTRUMENT", None)
    if instrument:
        env["P99LAB_AUDIT_INSTRUMENT"] = str(INSTRUMENT)
    return env
