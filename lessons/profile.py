"""``Profile``: every knob of the lab in one frozen value.

A notebook experiment is "this profile, under this server, with this load".  A profile is
immutable so that a run can always say exactly what it measured; ``replace`` gives a
variant, and ``env`` renders the ``LAB_*`` variables the lab Django project reads (the
project never imports this package: the environment is the whole contract).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Profile", "ProfileError", "SERVER_KINDS", "PRESETS"]

# Server kind -> the interface it speaks.  The launch details live in lessons.server.
SERVER_KINDS: dict[str, str] = {
    "gunicorn-sync": "wsgi",
    "gunicorn-gthread": "wsgi",
    "granian-wsgi": "wsgi",
    "uwsgi": "wsgi",
    "uvicorn": "asgi",
    "gunicorn-uvicorn": "asgi",
    "gunicorn-asgi": "asgi",
    "granian-asgi": "asgi",
    "hypercorn": "asgi",
    "daphne": "asgi",
}
THREADED = ("gunicorn-gthread", "granian-wsgi", "uwsgi")  # the kinds where threads apply
MIDDLEWARE_PRESETS = ("default", "minimal", "none")
CACHES = ("none", "locmem", "django-redis", "redis")
DATABASES = ("postgres", "sqlite")
PROFILERS = ("none", "silk", "pyinstrument", "debug-toolbar")
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


class ProfileError(ValueError):
    """A knob has a value the lab cannot run with; the message says what to use."""


def server_cores() -> int:
    """The cores a lab server actually gets: the CPU set it is pinned to (one core on a
    laptop, the other one running the load generator), or every core when the OS cannot
    pin.  The guide's ``(2 x cores) + 1`` is computed from this, not from the machine."""
    from lessons import cpus

    plan = cpus.plan()
    return len(plan.server) if plan.server else (os.cpu_count() or 1)


@dataclass(frozen=True)
class Profile:
    """One configuration of the lab: the server, Django's settings, the database.

    >>> Profile(server="uvicorn", middleware="none").replace(workers=2).env()["LAB_MIDDLEWARE"]
    'none'
    """

    server: str = "gunicorn-sync"
    workers: int = 1
    threads: int = 1
    middleware: str = "default"
    cache: str = "none"
    database: str = "postgres"
    conn_max_age: int | None = 0
    db_pool: bool = False
    db_pool_size: int | None = None
    # The guide's django-db-connection-pool settings (POOL_SIZE 10, MAX_OVERFLOW 10,
    # RECYCLE 300) instead of Django's own pool; PostgreSQL and conn_max_age=0 only.
    dj_db_conn_pool: bool = False
    conn_health_checks: bool = False
    statement_timeout_ms: int = 0
    debug: bool = False
    # Exact per-request counters (thread hops, threads, queries) at /__lab__/counters;
    # off for timing runs, on for counting runs.
    instrument: bool = False
    # Lessons 10-11's profiler: silk and pyinstrument profile /l10/ and /l11/; the debug
    # toolbar needs debug=True. Files go to LAB_PROFILE_DIR when the server is given one.
    profiler: str = "none"
    # Extra command-line arguments for the server (e.g. ("--max-requests", "1000")).
    server_args: tuple[str, ...] = ()
    # Extra LAB_* variables for a lesson's own endpoints (e.g. the upstream's URL).
    extra_env: tuple[tuple[str, str], ...] = field(default=())

    KNOBS: ClassVar[tuple[str, ...]]

    def __post_init__(self) -> None:
        if self.server not in SERVER_KINDS:
            raise ProfileError(
                f"Unknown server kind {self.server!r}: use one of {', '.join(SERVER_KINDS)}."
            )
        _int_at_least("workers", self.workers, 1)
        _int_at_least("threads", self.threads, 1)
        if self.threads > 1 and self.server not in THREADED:
            raise ProfileError(
                f"threads={self.threads} only applies to {', '.join(THREADED)}; "
                f"use one of those servers or threads=1."
            )
        if self.server == "daphne" and self.workers != 1:
            raise ProfileError("daphne runs a single process: use workers=1 with daphne.")
        if self.middleware not in MIDDLEWARE_PRESETS:
            bad = [m for m in self.middleware.split(",") if not _DOTTED.match(m.strip())]
            if bad or not self.middleware.strip():
                raise ProfileError(
                    f"Bad middleware {self.middleware!r}: use 'default', 'minimal', 'none' "
                    f"or a comma-separated list of dotted paths."
                )
        _one_of("cache", self.cache, CACHES)
        _one_of("database", self.database, DATABASES)
        _one_of("profiler", self.profiler, PROFILERS)
        if self.profiler == "debug-toolbar" and not self.debug:
            raise ProfileError("The debug toolbar only runs with DEBUG on: set debug=True or pick another profiler.")
        if self.conn_max_age is not None:
            _int_at_least("conn_max_age", self.conn_max_age, 0)
        _bool("db_pool", self.db_pool)
        _bool("dj_db_conn_pool", self.dj_db_conn_pool)
        _bool("conn_health_checks", self.conn_health_checks)
        _bool("debug", self.debug)
        _bool("instrument", self.instrument)
        if self.db_pool_size is not None:
            _int_at_least("db_pool_size", self.db_pool_size, 1)
        if self.db_pool and self.database != "postgres":
            raise ProfileError("db_pool needs database='postgres': SQLite has no pool in Django.")
        if self.db_pool and self.conn_max_age != 0:
            raise ProfileError(
                "Django's pool requires conn_max_age=0 (the pool keeps the connections): "
                "set conn_max_age=0 or db_pool=False."
            )
        if self.dj_db_conn_pool:
            if self.database != "postgres":
                raise ProfileError("dj_db_conn_pool needs database='postgres': the guide sets it up for PostgreSQL.")
            if self.db_pool:
                raise ProfileError("dj_db_conn_pool and db_pool are two pools: choose one.")
            if self.conn_max_age != 0:
                raise ProfileError(
                    "dj_db_conn_pool needs conn_max_age=0: Django hands the connection back to the "
                    "pool only when it closes it after a request."
                )
        _int_at_least("statement_timeout_ms", self.statement_timeout_ms, 0)
        if self.statement_timeout_ms and self.database != "postgres":
            raise ProfileError("statement_timeout_ms needs database='postgres': SQLite has no statement timeout.")
        if not all(isinstance(a, str) for a in self.server_args):
            raise ProfileError("server_args must be a tuple of strings, e.g. ('--max-requests', '1000').")
        for key, _ in self.extra_env:
            if not key.startswith("LAB_"):
                raise ProfileError(f"extra_env key {key!r} must start with LAB_ (the lab reads only LAB_*).")

    # -- variants -------------------------------------------------------------------

    def replace(self, **changes: Any) -> Profile:
        """A copy with some knobs changed: ``guide.replace(server="uvicorn")``."""
        unknown = sorted(set(changes) - set(self.KNOBS))
        if unknown:
            raise ProfileError(
                f"Unknown knob {unknown[0]!r}: known knobs are {', '.join(self.KNOBS)}."
            )
        return dataclasses.replace(self, **changes)

    def with_knob(self, name: str, text: str) -> Profile:
        """A copy with one knob set from text, as ``--set knob=value`` gives it."""
        if name not in self.KNOBS:
            raise ProfileError(f"Unknown knob {name!r}: known knobs are {', '.join(self.KNOBS)}.")
        return self.replace(**{name: _parse(name, text, getattr(self, name))})

    @classmethod
    def preset(cls, name: str) -> Profile:
        """A named starting point: ``naive``, ``guide`` or ``tuned``."""
        try:
            return PRESETS[name]()
        except KeyError:
            raise ProfileError(f"Unknown preset {name!r}: use one of {', '.join(PRESETS)}.") from None

    # -- rendering ------------------------------------------------------------------

    @property
    def interface(self) -> str:
        """'wsgi' or 'asgi'."""
        return SERVER_KINDS[self.server]

    def env(self) -> dict[str, str]:
        """The ``LAB_*`` variables lab_project reads (database and cache URLs excluded:
        the lab's services supply those)."""
        env = {
            "LAB_MIDDLEWARE": self.middleware,
            "LAB_CACHE": self.cache,
            "LAB_CONN_MAX_AGE": "none" if self.conn_max_age is None else str(self.conn_max_age),
            "LAB_DB_POOL": _b(self.db_pool),
            "LAB_CONN_HEALTH_CHECKS": _b(self.conn_health_checks),
            "LAB_STATEMENT_TIMEOUT_MS": str(self.statement_timeout_ms),
            "LAB_DEBUG": _b(self.debug),
            "LAB_INSTRUMENT": _b(self.instrument),
            "LAB_PROFILER": self.profiler,
        }
        if self.db_pool_size is not None:
            env["LAB_DB_POOL_SIZE"] = str(self.db_pool_size)
        if self.dj_db_conn_pool:
            env["LAB_DJ_DB_CONN_POOL"] = "1"
        env.update(dict(self.extra_env))
        return env

    def settings_snippet(self) -> str:
        """The Django settings this profile amounts to, as a project would write them."""
        from lessons.profile_settings import render

        return render(self)

    def describe(self) -> str:
        """One line for tables and titles: the server, then the knobs changed from the
        defaults, e.g. ``uvicorn x1 middleware='none'``."""
        base = Profile()
        changed = [
            f"{k}={getattr(self, k)!r}"
            for k in self.KNOBS
            if k not in ("server", "workers") and getattr(self, k) != getattr(base, k)
        ]
        return " ".join([f"{self.server} x{self.workers}", *changed])


Profile.KNOBS = tuple(f.name for f in dataclasses.fields(Profile))


def _naive() -> Profile:
    """What `startproject` plus the guide's server advice gives: the default middleware,
    a new database connection per request, no cache, gunicorn with Uvicorn workers and
    (2 x cores) + 1 of them, counting the cores the server is pinned to."""
    return Profile(server="gunicorn-uvicorn", workers=2 * server_cores() + 1, middleware="default")


def _guide() -> Profile:
    """What the guide recommends, taken literally: ASGI workers by its formula, its
    minimal middleware, django-redis, CONN_MAX_AGE=60 with health checks, a 30 s
    statement timeout (workers counted from the cores the server is pinned to)."""
    return Profile(
        server="gunicorn-uvicorn",
        workers=2 * server_cores() + 1,
        middleware="minimal",
        cache="django-redis",
        conn_max_age=60,
        conn_health_checks=True,
        statement_timeout_ms=30_000,
    )


TUNED_MIDDLEWARE = "django.middleware.security.SecurityMiddleware,django.middleware.common.CommonMiddleware"


def _tuned() -> Profile:
    """What the notebooks measured on a small machine: sync views under gunicorn's sync
    worker (thread hops cost ASGI several times the CPU for sync code, notebooks 01 and
    05), three workers per core (notebook 02), only the middleware a token-authenticated
    JSON API uses (security headers, Content-Length; notebook 05), a persistent
    connection per worker (notebook 08), django-redis (notebook 07), and a statement
    timeout inside the budget (notebook 08)."""
    return Profile(
        server="gunicorn-sync",
        workers=3,
        middleware=TUNED_MIDDLEWARE,
        cache="django-redis",
        conn_max_age=600,
        statement_timeout_ms=1_000,
    )


PRESETS = {"naive": _naive, "guide": _guide, "tuned": _tuned}


def _b(value: bool) -> str:
    return "1" if value else "0"


def _int_at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ProfileError(f"{name} must be a whole number >= {low}, not {value!r}.")


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ProfileError(f"{name} must be True or False, not {value!r}.")


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ProfileError(f"Unknown {name} {value!r}: use one of {', '.join(allowed)}.")


def _parse(name: str, text: str, current: Any) -> Any:
    """Turn ``--set`` text into the knob's type, judged by the knob's default."""
    text = text.strip()
    default = getattr(Profile(), name)
    if isinstance(default, bool):
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ProfileError(f"{name} must be true or false, not {text!r}.")
    if isinstance(default, int) or name in ("conn_max_age", "db_pool_size"):
        if text.lower() == "none" and name in ("conn_max_age", "db_pool_size"):
            return None
        try:
            return int(text)
        except ValueError:
            raise ProfileError(f"{name} must be a whole number, not {text!r}.") from None
    if isinstance(default, tuple):
        if name == "server_args":
            return tuple(text.split())
        pairs = [p.split("=", 1) for p in text.split(",") if p]
        if not all(len(p) == 2 for p in pairs):
            raise ProfileError(f"{name} must look like LAB_X=1,LAB_Y=2, not {text!r}.")
        return tuple((k, v) for k, v in pairs)
    return text
