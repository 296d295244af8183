"""``Profile``: every knob of the lab in one frozen value.

A notebook experiment is "this profile, under this server, with this load".  A profile is
immutable so that a run can always say exactly what it measured; ``replace`` gives a
variant, and ``env`` renders the ``LAB_*`` variables the lab Django project reads (the
project never imports this package: the environment is the whole contract).

The knobs' names and the rules between them are the project's knob table
(``lab_project/lab/knobs.py``, which settings.py reads too); the server kinds are
``lessons.server_kinds``.  This module only applies them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lab_project.lab import knobs
from lessons.server_kinds import SERVER_KINDS

__all__ = ["Profile", "ProfileError", "SERVER_KINDS", "PRESETS"]


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
        self._check_server()
        if self.middleware not in knobs.MIDDLEWARE_PRESETS:
            paths = [m.strip() for m in self.middleware.split(",")]
            if not all(knobs.DOTTED_PATH.fullmatch(m) for m in paths):
                presets = ", ".join(f"'{name}'" for name in knobs.MIDDLEWARE_PRESETS)
                raise ProfileError(
                    f"Bad middleware {self.middleware!r}: use {presets} "
                    f"or a comma-separated list of dotted paths."
                )
        _one_of("cache", self.cache, knobs.CACHES)
        _one_of("database", self.database, knobs.DATABASES)
        _one_of("profiler", self.profiler, knobs.PROFILERS)
        if self.conn_max_age is not None:
            _int_at_least("conn_max_age", self.conn_max_age, 0)
        for name in ("db_pool", "dj_db_conn_pool", "conn_health_checks", "debug", "instrument"):
            _bool(name, getattr(self, name))
        if self.db_pool_size is not None:
            _int_at_least("db_pool_size", self.db_pool_size, 1)
        _int_at_least("statement_timeout_ms", self.statement_timeout_ms, 0)
        for rule in knobs.broken_rules(vars(self), profile=True)[:1]:
            raise ProfileError(rule.message)
        if not all(isinstance(a, str) for a in self.server_args):
            raise ProfileError("server_args must be a tuple of strings, e.g. ('--max-requests', '1000').")
        for key, _ in self.extra_env:
            if not key.startswith("LAB_"):
                raise ProfileError(f"extra_env key {key!r} must start with LAB_ (the lab reads only LAB_*).")

    def _check_server(self) -> None:
        """The server kind, and the workers and threads it takes (lessons.server_kinds)."""
        kind = SERVER_KINDS.get(self.server)
        if kind is None:
            raise ProfileError(
                f"Unknown server kind {self.server!r}: use one of {', '.join(SERVER_KINDS)}."
            )
        _int_at_least("workers", self.workers, 1)
        _int_at_least("threads", self.threads, 1)
        if self.threads > 1 and not kind.threads:
            threaded = ", ".join(name for name, k in SERVER_KINDS.items() if k.threads)
            raise ProfileError(
                f"threads={self.threads} only applies to {threaded}; "
                f"use one of those servers or threads=1."
            )
        most = kind.max_workers
        if most is not None and self.workers > most:
            runs, use = ("a single process", "1") if most == 1 else (f"at most {most} workers", f"{most} or fewer")
            raise ProfileError(f"{self.server} runs {runs}: use workers={use} with {self.server}.")

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
        return SERVER_KINDS[self.server].interface

    @property
    def middleware_stack(self) -> list[str]:
        """The dotted paths the middleware knob puts in Django's MIDDLEWARE (a preset's, or
        the list given), before any profiler's."""
        if self.middleware in knobs.MIDDLEWARE_PRESETS:
            return list(knobs.MIDDLEWARE_PRESETS[self.middleware])
        return [m.strip() for m in self.middleware.split(",")]

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
        """The Django settings this profile amounts to, as a project's settings.py would
        write them (what lab_project/lab/settings.py makes of its LAB_* variables)."""
        middleware = "".join(f'\n    "{m}",' for m in self.middleware_stack)
        middleware += "\n" if middleware else ""
        options: list[str] = []
        if self.db_pool:
            size = self.db_pool_size
            pool = f'{{"min_size": {size}, "max_size": {size}}}' if size else "True"
            options.append(f'"pool": {pool}')
        if self.statement_timeout_ms:
            options.append(f'"options": "-c statement_timeout={self.statement_timeout_ms}"')
        lines = [
            f"DEBUG = {self.debug}",
            f"MIDDLEWARE = [{middleware}]",
            'DATABASES = {"default": {',
            '    "ENGINE": "django.db.backends.postgresql",  # NAME, USER, HOST... as yours',
            f'    "CONN_MAX_AGE": {self.conn_max_age},',
            f'    "CONN_HEALTH_CHECKS": {self.conn_health_checks},',
            '    "OPTIONS": {' + ", ".join(options) + "},",
            "}}",
        ]
        cache = knobs.CACHES[self.cache]
        location = "redis://127.0.0.1:6379/0" if cache.network else cache.location
        location = f', "LOCATION": "{location}"' if location else ""
        lines.append(f'CACHES = {{"default": {{"BACKEND": "{cache.backend}"{location}}}}}')
        return "\n".join(lines)

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


# Only what a token-authenticated JSON API uses: security headers, Content-Length.
TUNED_MIDDLEWARE = ",".join((knobs.SECURITY, knobs.COMMON))


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
        if text.lower() in knobs.BOOLEANS:
            return knobs.BOOLEANS[text.lower()]
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
